#pragma once
// cutrain-train's checks of a --resume against the run that wrote the checkpoint, beyond what
// Trainer::resume checks (the model, the optimizer, the data spec, a mid-epoch data order).

#include <map>
#include <string>

#include "tools/train_options.hpp"

namespace cutrain::tools {

// The string metadata of the --resume checkpoint, read once for the checks below: empty without
// --resume, or for a file that is no checkpoint (Trainer::resume names what it is).
using Metadata = std::map<std::string, std::string>;
Metadata resume_metadata(const Config& c);

// Note [validation split on resume]: --val-fraction holds out rows of the training file chosen
// by --seed (and --stratify, after --train-subset). A resume that picks them otherwise - another
// fraction or seed, the split added or left out - trained on rows the first epochs validated
// on and validated on rows they trained on, so early stopping and the best weights judged on
// seen data without a word (at an epoch boundary the trainer allows a new order, and the
// library never sees the split). The flags that pick the rows, as one string ("" without
// --val-fraction), travel as checkpoint metadata kValidationSplitKey.
inline constexpr const char* kValidationSplitKey = "cutrain.validation_split";
std::string validation_split(const Config& c);

// Note [arithmetic on resume]: a resumed run repeats the uninterrupted run's bits only where it
// computes as that run did - on the same kind of device and, on the CPU, with as many threads:
// OpenBLAS blocks a GEMM's sums by its thread count (a 64 x 64 x 784 SGEMM differs in its last
// bits between 1 and 2 threads), and another GPU model runs other GEMM kernels. Checkpoints
// record describe(device) as kArithmeticKey; a resume elsewhere goes on - a faithful
// continuation, rounded otherwise - and says so, naming what repeats the bits. (Cutting each
// CPU GEMM into tiles fixed by its shape, one single-threaded OpenBLAS call each, makes the bits
// independent of the thread count, but cost the dense layers 25-50% on 2 cores - bench_layers
// 784x1024 at batch 256: 4.3 -> 5.3-5.5 ms; 4096x4096: 92 -> 104-137 ms, with 64- and
// 256-column tiles - so the thread count is recorded instead.)
inline constexpr const char* kArithmeticKey = "cutrain.arithmetic";
// What kArithmeticKey records: describe(device) without a GPU's ordinal (cuda:1 computes as
// cuda:0 on the same model).
std::string arithmetic(const std::string& device_description);
void note_resume_arithmetic(const Metadata& meta, const std::string& arithmetic_now);

// Note [schedule span on resume]: --schedule cosine, linear and onecycle spread the learning rate
// over --epochs, and a resume goes on up to its own --epochs - so a resume with more epochs (to
// train longer) continues on the longer schedule, whose rate at the checkpoint's step is not
// where the checkpoint's run was (a cosine run that ended near 0 resumes well above it), as if
// the run had been planned that long from the start. Allowed, and said: checkpoints record the
// schedule and the epochs it spans as kScheduleSpanKey ("cosine 30").
inline constexpr const char* kScheduleSpanKey = "cutrain.schedule_span";
std::string schedule_span(const Config& c);
void note_resume_schedule(const Config& c, const Metadata& meta);

// A UsageError when the checkpoint `c.resume` records a validation split other than this run's.
// Checkpoints without the entry (written before it) pass.
void check_resume_split(const Config& c, const Metadata& meta);

}  // namespace cutrain::tools
