// Model checkpoints (src/train/checkpoint.cpp): round trips, mismatches named, all-or-nothing
// loading, torch.optim state, exports.
#include <gtest/gtest.h>

#include <cstring>

#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/ops.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train/checkpoint.hpp"
#include "support/errors.hpp"
#include "support/temp_path.hpp"

namespace cutrain {
namespace {

std::string tmp(const std::string& name) {
  return testing::temp_path("cutrain_ckpt_test", name);
}

nn::Sequential small_model(std::uint64_t seed) {
  nn::Sequential m(4);
  m.emplace<nn::Linear>(4, 6).emplace<nn::BatchNorm1d>(6);
  m.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Linear>(6, 3);
  m.build(Device::cpu(), seed);
  return m;
}

TEST(Checkpoint, ModelAndOptimizerRoundTripAndMismatchesAreNamed) {
  nn::Sequential a = small_model(1);
  optim::Adam opt_a(a.parameters(), {.lr = 0.01F});
  Arena g = a.parameters().like();
  for (const auto& t : g.layout().tensors())  // padding stays zero (Note [arena layout])
    g.tensor_from_host(t.name, std::vector<float>(t.numel, 0.1F));
  opt_a.step(a.parameters(), g);
  train::TrainState st{
      .epoch = 2, .step = 1, .best_metric = 0.25, .bad_epochs = 1, .has_best = true};
  train::save_checkpoint(tmp("ck.safetensors"), a, &opt_a, st, {{"config", "x"}});

  nn::Sequential b = small_model(2);
  optim::Adam opt_b(b.parameters(), {.lr = 0.01F});
  std::map<std::string, std::string> meta;
  const train::TrainState back = train::load_checkpoint(tmp("ck.safetensors"), b, &opt_b, &meta);
  EXPECT_EQ(back.epoch, 2);
  EXPECT_EQ(back.best_metric, 0.25);
  EXPECT_EQ(meta.at("config"), "x");
  EXPECT_EQ(b.parameters().to_host(), a.parameters().to_host());
  EXPECT_EQ(b.buffers().to_host(), a.buffers().to_host());
  EXPECT_EQ(opt_b.applied_steps(), 1);
  for (std::size_t k = 0; k < opt_a.state().size(); ++k)
    EXPECT_EQ(opt_b.state()[k].arena->to_host(), opt_a.state()[k].arena->to_host());

  // Another model is refused naming the first module that differs (the file records them);
  // a file without that record, naming the first tensor of another shape. Another optimizer is
  // refused naming both.
  nn::Sequential wide(4);
  wide.emplace<nn::Linear>(4, 7).emplace<nn::BatchNorm1d>(7);
  wide.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Linear>(7, 3);
  wide.build(Device::cpu(), 1);
  const std::string other =
      testing::error_of([&] { train::load_checkpoint(tmp("ck.safetensors"), wide, nullptr); });
  EXPECT_NE(other.find("written by another model - its module 0 is "
                       "{\"args\":{\"bias\":true,\"in_features\":4,\"out_features\":6},"
                       "\"type\":\"Linear\"}, this model's is "
                       "{\"args\":{\"bias\":true,\"in_features\":4,\"out_features\":7}"),
            std::string::npos)
      << other;
  io::SafetensorsFile unrecorded = io::load_safetensors(tmp("ck.safetensors"));
  unrecorded.metadata.erase("cutrain.modules");
  io::save_safetensors(tmp("unrecorded.safetensors"), unrecorded.tensors, unrecorded.metadata);
  EXPECT_NE(testing::error_of([&] {
              train::load_checkpoint(tmp("unrecorded.safetensors"), wide, nullptr);
            }).find("'layers.0.weight' has shape [6, 4] but the model expects [7, 4]"),
            std::string::npos);
  optim::Sgd sgd(b.parameters(), {.lr = 0.1F, .momentum = 0.9F});
  EXPECT_NE(testing::error_of([&] {
              train::load_checkpoint(tmp("ck.safetensors"), b, &sgd);
            }).find("optimizer is 'Adam'"),
            std::string::npos);
  io::save_safetensors(tmp("weights.safetensors"), {}, {});
  EXPECT_NE(testing::error_of([&] {
              train::load_checkpoint(tmp("weights.safetensors"), b, nullptr);
            }).find("not a cutrain checkpoint"),
            std::string::npos);
}

// The metadata fields added for distributed runs, early stopping and BatchNorm's count: a file
// whose values are inconsistent is refused with the field named, not half-applied silently.
TEST(Checkpoint, InconsistentPositionMetadataIsRefused) {
  nn::Sequential a = small_model(1);
  Arena best_p = a.parameters().like(), best_b = a.buffers().like();
  best_p.copy_from(a.parameters());
  ops::scale(0.5F, best_p);  // distinct from the current weights
  train::save_checkpoint(tmp("meta.safetensors"), a, nullptr, {.has_best = true, .best_epoch = 1},
                         {}, {&best_p, &best_b});
  const io::SafetensorsFile good = io::load_safetensors(tmp("meta.safetensors"));
  auto variant = [&](const std::string& key, const std::string& value, bool drop_best = false) {
    io::SafetensorsFile f = good;
    f.metadata[key] = value;
    if (drop_best)
      std::erase_if(f.tensors, [](const io::TensorData& t) { return t.name.starts_with("best."); });
    io::save_safetensors(tmp("meta_bad.safetensors"), f.tensors, f.metadata);
    nn::Sequential b = small_model(2);
    Arena bp = b.parameters().like(), bb = b.buffers().like();
    return testing::error_of([&] {
      train::load_checkpoint(tmp("meta_bad.safetensors"), b, nullptr, nullptr, {&bp, &bb});
    });
  };
  EXPECT_NE(variant("world_size", "0").find("world_size 0"), std::string::npos);
  EXPECT_NE(variant("world_size", "two").find("'world_size' = 'two' is not an integer"),
            std::string::npos);
  EXPECT_NE(variant("batch_statistics", "synced").find("batch_statistics 'synced'"),
            std::string::npos);
  EXPECT_NE(variant("training_forward_count", "7").find("training_forward_count 7 is not in"),
            std::string::npos);
  EXPECT_NE(variant("best_weights", "1", true).find("tensor 'best.layers.0.weight' is missing"),
            std::string::npos);
  EXPECT_NE(variant("best_epoch", "1.5").find("'best_epoch' = '1.5'"), std::string::npos);
  // A mid-epoch position needs its step results, and cannot have skipped more steps than ran.
  EXPECT_NE(variant("batch", "3").find("at batch 3 needs the F32 tensor 'trainer.step_losses'"),
            std::string::npos);
  EXPECT_NE(variant("epoch_skipped_steps", "1").find("mid-epoch position (batch 0, skipped 1)"),
            std::string::npos);
  nn::Sequential b = small_model(2);
  Arena bp = b.parameters().like(), bb = b.buffers().like();
  const train::TrainState st =
      train::load_checkpoint(tmp("meta.safetensors"), b, nullptr, nullptr, {&bp, &bb});
  EXPECT_TRUE(st.has_best_weights);
  EXPECT_EQ(st.best_epoch, 1);
  EXPECT_EQ(bp.to_host(), best_p.to_host());
  EXPECT_NE(bp.to_host(), b.parameters().to_host());
}

// Note [step losses of every rank]: a multi-rank mid-epoch state keeps one row of step losses
// per rank; a one-row file (a single process, or written before the note) still loads; any
// other shape is refused with the shapes it may have.
TEST(Checkpoint, MidEpochStepLossesKeepARowPerRank) {
  nn::Sequential a = small_model(1);
  train::TrainState st{.step = 3, .world_size = 2, .batch = 3};
  st.epoch_losses = {0.5F, 0.25F, 0.125F, 1.5F, 1.25F, 1.125F};
  st.epoch_norms = {2.0F, 3.0F, 4.0F};
  train::save_checkpoint(tmp("ranks.safetensors"), a, nullptr, st);
  const io::SafetensorsFile file = io::load_safetensors(tmp("ranks.safetensors"));
  const io::TensorData* losses = file.find("trainer.step_losses");
  ASSERT_NE(losses, nullptr);
  EXPECT_EQ(losses->shape, (Shape{2, 3}));
  EXPECT_EQ(file.find("trainer.step_norms")->shape, (Shape{3}));
  nn::Sequential b = small_model(2);
  train::TrainState back = train::load_checkpoint(tmp("ranks.safetensors"), b, nullptr);
  EXPECT_EQ(back.epoch_losses, st.epoch_losses);
  EXPECT_EQ(back.epoch_norms, st.epoch_norms);

  auto with_losses = [&](const Shape& shape, std::vector<float> values) {
    io::SafetensorsFile f = file;
    std::erase_if(f.tensors,
                  [](const io::TensorData& t) { return t.name == "trainer.step_losses"; });
    f.tensors.push_back(io::make_tensor("trainer.step_losses", shape, values));
    io::save_safetensors(tmp("ranks_variant.safetensors"), f.tensors, f.metadata);
    return tmp("ranks_variant.safetensors");
  };
  back = train::load_checkpoint(with_losses({3}, {0.5F, 0.25F, 0.125F}), b, nullptr);
  EXPECT_EQ(back.epoch_losses, (std::vector<float>{0.5F, 0.25F, 0.125F}));
  const std::string e = testing::error_of([&] {
    train::load_checkpoint(with_losses({3, 2}, st.epoch_losses), b, nullptr);
  });
  EXPECT_NE(e.find("'trainer.step_losses' of shape [2, 3] (a row per rank) or [3]"),
            std::string::npos)
      << e;
  st.epoch_losses.resize(4);
  EXPECT_NE(testing::error_of([&] {
              train::save_checkpoint(tmp("ranks_bad.safetensors"), a, nullptr, st);
            }).find("needs 6 step losses and 3 norms"),
            std::string::npos);
}

// Note [torch optimizer state]: export and import round-trip every state tensor and the step
// count; files of another optimizer or configuration are refused with the reason, changing
// nothing. (tests/torch_equivalence.py checks the contents against torch.optim itself.)
TEST(TorchOptimizerState, RoundTripsAndRefusesOtherConfigurations) {
  nn::Sequential a = small_model(1);
  optim::Adam opt_a(a.parameters(), {.lr = 0.01F, .amsgrad = true});
  Arena g = a.parameters().like();
  for (const auto& t : g.layout().tensors())
    g.tensor_from_host(t.name, std::vector<float>(t.numel, 0.3F));
  for (int i = 0; i < 3; ++i) opt_a.step(a.parameters(), g);
  train::export_torch_optimizer(tmp("opt.safetensors"), a, opt_a);
  const io::SafetensorsFile f = io::load_safetensors(tmp("opt.safetensors"));
  EXPECT_EQ(f.metadata.at("optimizer"), "Adam");
  EXPECT_EQ(f.metadata.at("step"), "3");
  ASSERT_NE(f.find("0.weight.exp_avg"), nullptr);  // torch.nn.Sequential's names, torch's keys
  EXPECT_EQ(f.find("0.weight.exp_avg")->floats(),
            opt_a.state()[0].arena->tensor_to_host("layers.0.weight"));
  ASSERT_NE(f.find("3.bias.max_exp_avg_sq"), nullptr);

  nn::Sequential b = small_model(1);
  optim::Adam opt_b(b.parameters(), {.lr = 0.01F, .amsgrad = true});
  train::import_torch_optimizer(tmp("opt.safetensors"), b, opt_b);
  EXPECT_EQ(opt_b.applied_steps(), 3);
  for (std::size_t k = 0; k < opt_a.state().size(); ++k)
    EXPECT_EQ(opt_b.state()[k].arena->to_host(), opt_a.state()[k].arena->to_host());

  optim::Adam plain(b.parameters(), {.lr = 0.01F});
  EXPECT_NE(testing::error_of([&] {
              train::import_torch_optimizer(tmp("opt.safetensors"), b, plain);
            }).find("match no state of cutrain's Adam"),
            std::string::npos);
  EXPECT_EQ(plain.applied_steps(), 0);
  EXPECT_EQ(plain.state()[0].arena->to_host(), std::vector<float>(plain.state()[0].arena->total()));
  optim::Sgd sgd(b.parameters(), {.lr = 0.1F, .momentum = 0.9F});
  EXPECT_NE(testing::error_of([&] {
              train::import_torch_optimizer(tmp("opt.safetensors"), b, sgd);
            }).find("state of torch.optim.Adam cannot initialize cutrain's SGD"),
            std::string::npos);
  nn::Sequential wide(4);
  wide.emplace<nn::Linear>(4, 7).emplace<nn::BatchNorm1d>(7);
  wide.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Linear>(7, 3);
  wide.build(Device::cpu(), 1);
  optim::Adam opt_w(wide.parameters(), {.lr = 0.01F, .amsgrad = true});
  EXPECT_NE(testing::error_of([&] {
              train::import_torch_optimizer(tmp("opt.safetensors"), wide, opt_w);
            }).find("'0.weight.exp_avg' must be F32 of shape [7, 4]"),
            std::string::npos);
  // Before the first step there is no state, as in torch.optim.
  optim::Adam fresh(b.parameters(), {.lr = 0.01F});
  train::export_torch_optimizer(tmp("fresh.safetensors"), b, fresh);
  EXPECT_TRUE(io::load_safetensors(tmp("fresh.safetensors")).tensors.empty());
  train::import_torch_optimizer(tmp("fresh.safetensors"), b, plain);
  EXPECT_EQ(plain.applied_steps(), 0);
}

// A refused file changes nothing: not the weights, not the optimizer state, not the counters.
// (Loading used to copy the weights in before reading the metadata that then failed.)
TEST(Checkpoint, RefusedLoadLeavesModelAndOptimizerUntouched) {
  nn::Sequential a = small_model(1);
  optim::Adam opt_a(a.parameters(), {.lr = 0.01F, .amsgrad = true});
  Arena g = a.parameters().like();
  for (const auto& t : g.layout().tensors())
    g.tensor_from_host(t.name, std::vector<float>(t.numel, 0.25F));
  opt_a.step(a.parameters(), g);
  train::save_checkpoint(tmp("whole.safetensors"), a, &opt_a, {.epoch = 1, .step = 1});
  const io::SafetensorsFile good = io::load_safetensors(tmp("whole.safetensors"));

  nn::Sequential b = small_model(2);
  optim::Adam opt_b(b.parameters(), {.lr = 0.01F, .amsgrad = true});
  Arena gb = b.parameters().like();
  gb.copy_from(g);
  opt_b.step(b.parameters(), gb);
  opt_b.step(b.parameters(), gb);
  const std::vector<float> params = b.parameters().to_host(), buffers = b.buffers().to_host();
  std::vector<std::vector<float>> states;
  for (const auto& s : opt_b.state()) states.push_back(s.arena->to_host());
  ASSERT_NE(params, a.parameters().to_host());

  auto refused = [&](io::SafetensorsFile f, const char* expect) {
    io::save_safetensors(tmp("refused.safetensors"), f.tensors, f.metadata);
    const std::string e =
        testing::error_of([&] { train::load_checkpoint(tmp("refused.safetensors"), b, &opt_b); });
    EXPECT_NE(e.find(expect), std::string::npos) << e;
    EXPECT_EQ(b.parameters().to_host(), params) << expect;
    EXPECT_EQ(b.buffers().to_host(), buffers) << expect;
    for (std::size_t k = 0; k < states.size(); ++k)
      EXPECT_EQ(opt_b.state()[k].arena->to_host(), states[k]) << expect;
    EXPECT_EQ(opt_b.applied_steps(), 2) << expect;
  };
  io::SafetensorsFile f = good;
  f.metadata["model_seed"] = "seven";
  refused(f, "'model_seed' = 'seven' is not an integer");
  f = good;
  f.metadata["epoch"] = " 1";  // integers are written by std::to_string: no spaces
  refused(f, "'epoch' = ' 1' is not an integer");
  f = good;
  f.metadata["optimizer.applied_steps"] = "-1";
  refused(f, "step counts (-1, 0) out of range");
  f = good;
  std::erase_if(f.tensors, [](const io::TensorData& t) { return t.name.starts_with("optim.max"); });
  refused(f, "is missing");

  // The intact file loads, and everything takes the checkpoint's values.
  train::load_checkpoint(tmp("whole.safetensors"), b, &opt_b);
  EXPECT_EQ(b.parameters().to_host(), a.parameters().to_host());
  EXPECT_EQ(opt_b.applied_steps(), 1);
}

TEST(Checkpoint, ExportsTorchNamingAndLoadsWeights) {
  nn::Sequential a = small_model(5);
  // num_batches_tracked counts training-mode forwards only, as torch's BatchNorm1d does.
  std::vector<float> xs(2 * 4, 0.5F);
  const nn::Matrix x{xs.data(), 2, 4, Device::cpu()};
  for (int i = 0; i < 3; ++i) a.forward(x);
  a.eval();
  a.forward(x);
  a.forward(x);
  a.train();
  train::export_torch(tmp("torch.safetensors"), a);
  const io::SafetensorsFile f = io::load_safetensors(tmp("torch.safetensors"));
  EXPECT_NE(f.find("0.weight"), nullptr);
  EXPECT_NE(f.find("1.running_var"), nullptr);
  ASSERT_NE(f.find("1.num_batches_tracked"), nullptr);
  EXPECT_EQ(f.find("1.num_batches_tracked")->dtype, io::DType::kI64);
  std::int64_t tracked = 0;
  std::memcpy(&tracked, f.find("1.num_batches_tracked")->bytes.data(), sizeof(tracked));
  EXPECT_EQ(tracked, 3);
  EXPECT_EQ(a.forward_count(), 5U);
  // Note [architecture in exports]: the modules travel with the weights.
  EXPECT_EQ(f.metadata.at("cutrain.modules"), a.torch_modules());
  nn::Sequential b = small_model(6);
  train::load_weights(tmp("torch.safetensors"), b);  // torch names accepted
  EXPECT_EQ(b.parameters().to_host(), a.parameters().to_host());
}

}  // namespace
}  // namespace cutrain
