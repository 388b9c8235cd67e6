#include "src/report/model_report.h"

#include <gtest/gtest.h>

namespace fs::profile {
namespace {

Json Layer(const std::string& name, double ms, bool fused = false) {
  Json l = Json::MakeObject();
  l["name"] = name;
  l["type"] = fused ? "BatchNorm" : "Convolution";
  l["output_shape"] = "1x16x8x8";
  l["median_ms"] = fused ? 0.0 : ms;
  l["p90_ms"] = fused ? 0.0 : ms * 1.1;
  l["fused"] = fused;
  l["flops"] = 2e6;
  l["gflops_per_s"] = fused ? Json() : Json(2e6 / (ms * 1e6));
  return l;
}

Json Model() {
  Json m = Json::MakeObject();
  m["model"] = "tiny.cfg";
  m["batch_size"] = 1;
  m["total_inference_time_ms"] = 28.0;
  m["layer_count"] = 8;
  m["timed_layer_count"] = 7;
  m["checklist"]["verdict"] = "not met";
  Json layers = Json::MakeArray();
  const double ms[] = {1, 7, 2, 6, 3, 5, 4};
  for (int i = 0; i < 7; ++i) layers.Push(Layer("conv_" + std::to_string(i), ms[i]));
  layers.Push(Layer("bn_9", 0, true));
  m["layer_timings"] = layers;
  return m;
}

TEST(ModelReportTest, TopLayersByTimeAndEveryTimedLayer) {
  const std::string md = RenderBaselineModelSection(Model(), "models/y.json", "models/t.json");
  ASSERT_EQ(md.rfind(kModelSectionBegin, 0), 0u);
  const size_t top = md.find("### Top 5 layers by time");
  const size_t every = md.find("### Every timed layer");
  ASSERT_NE(top, std::string::npos);
  ASSERT_NE(every, std::string::npos);
  const std::string top_part = md.substr(top, every - top);
  // conv_1 (7 ms), conv_3 (6), conv_5 (5), conv_6 (4), conv_4 (3): in that order; not conv_0/2.
  size_t last = 0;
  for (const char* name : {"| conv_1 |", "| conv_3 |", "| conv_5 |", "| conv_6 |", "| conv_4 |"}) {
    size_t at = top_part.find(name);
    ASSERT_NE(at, std::string::npos) << name;
    EXPECT_GT(at, last) << name;
    last = at;
  }
  EXPECT_EQ(top_part.find("| conv_0 |"), std::string::npos);
  EXPECT_EQ(top_part.find("| conv_2 |"), std::string::npos);
  const std::string every_part = md.substr(every);
  EXPECT_NE(every_part.find("| conv_0 |"), std::string::npos);
  EXPECT_EQ(every_part.find("bn_9"), std::string::npos);  // fused: it ran inside its conv
  EXPECT_NE(md.find("**not met**"), std::string::npos);
  EXPECT_NE(md.find("models/t.json"), std::string::npos);
}

TEST(ModelReportTest, AnErrorSaysWhyInsteadOfATable) {
  Json m = Json::MakeObject();
  m["error"] = "model file /x.cfg does not exist";
  const std::string md = RenderBaselineModelSection(m, "a", "b");
  EXPECT_NE(md.find("Not measured: model file /x.cfg does not exist"), std::string::npos);
  EXPECT_EQ(md.find("| layer |"), std::string::npos);
  EXPECT_NE(RenderModelHtml(m, "a", "b").find("Not measured"), std::string::npos);
  EXPECT_NE(RenderModelHtml(Model(), "a", "b").find("<table id=\"model-top\">"), std::string::npos);
}

}  // namespace
}  // namespace fs::profile
