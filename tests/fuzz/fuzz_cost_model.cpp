// Fuzz target: loading a routing model (XGBoost JSON with pfa's metadata), as the router loads the
// store's active model. A model it accepts must predict and answer coverage questions for any
// problem without crashing or hanging.
#include <pfa/error.h>
#include <pfa/learner/cost_model.h>
#include <pfa/problem.h>

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::shared_ptr<const pfa::learner::CostModel> model;
  try {
    model = pfa::learner::CostModel::from_json(
        std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const pfa::Error&) {
    return 0;
  }
  const pfa::Problem problems[] = {
      pfa::make_problem(1, 8, 8, 128, 128, 64, PFA_DTYPE_FP32, 1),
      pfa::make_problem(2, 16, 4, 1, 4096, 128, PFA_DTYPE_BF16, 0),
  };
  const int backends[] = {-1, 0, 1, 2, 3, 1000};
  double costs[6];
  for (const auto& p : problems) {
    for (int device_class : {-1, 0, 1, 7}) {
      (void)model->predict(p, device_class, backends, costs);
      for (int b : backends) {
        (void)model->covers(b, device_class, p);
        (void)model->coverage(b, device_class);
        (void)model->measurements(0, b);
      }
    }
  }
  return 0;
}
