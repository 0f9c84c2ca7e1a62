#pragma once
// Every header the fuzz targets use, precompiled once (nlohmann/json and the flas readers dominate
// the build; compiled per target they made the fuzz build several times slower).
#include "flas/eval/generation_store.hpp"
#include "flas/field/flow_checkpoint.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/io/checkpoint.hpp"
#include "flas/models/gemma2/config.hpp"
#include "flas/serve/request.hpp"
#include "flas/train/axbench_data.hpp"
#include "flas/train/trainer.hpp"
