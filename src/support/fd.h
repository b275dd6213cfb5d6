// SPDX-License-Identifier: BSD-2-Clause
// UniqueFd lives in the public API (mmar/unique_fd.h); kept here for the
// implementation's includes.
#pragma once

#include "mmar/unique_fd.h"
