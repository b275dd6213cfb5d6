# SPDX-License-Identifier: BSD-2-Clause
# bash completion for mmar: verbs, each verb's options (read from its own
# --help, so they never drift from the command), and files.
_mmar() {
  local cur prev verb
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  verb=${COMP_WORDS[1]}
  if ((COMP_CWORD == 1)); then
    local verbs
    verbs=$("${COMP_WORDS[0]}" --help 2>/dev/null | awk '/^Verbs:/{on=1; next} on && /^  [a-z]/{print $1}')
    mapfile -t COMPREPLY < <(compgen -W "$verbs help --help --version" -- "$cur")
    return
  fi
  if [[ $verb == help ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$("${COMP_WORDS[0]}" --help 2>/dev/null | awk '/^Verbs:/{on=1; next} on && /^  [a-z]/{print $1}')" -- "$cur")
    return
  fi
  if [[ $verb == btf && COMP_CWORD -eq 2 ]]; then
    mapfile -t COMPREPLY < <(compgen -W "dump find stats pack from-ctf" -- "$cur")
    return
  fi
  if [[ $verb == ctf && COMP_CWORD -eq 2 ]]; then
    mapfile -t COMPREPLY < <(compgen -W "dump find from-btf" -- "$cur")
    return
  fi
  case $prev in
    --compress) mapfile -t COMPREPLY < <(compgen -W "zstd xz none gzip bzip2" -- "$cur"); return ;;
    --format) mapfile -t COMPREPLY < <(compgen -W "mmar ctf raw c pax gnu ustar zip cpio" -- "$cur"); return ;;
    -C | --directory) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
  esac
  if [[ $cur == -* ]]; then
    local opts
    opts=$("${COMP_WORDS[0]}" "$verb" --help 2>/dev/null | grep -o -- '--[a-z0-9-]*' | sort -u)
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
    return
  fi
  mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}
complete -o filenames -F _mmar mmar
