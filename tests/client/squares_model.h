// A default CNN trained for three epochs on 160 squares (squares.h): a
// global model that knows the squares, for the tests of what a site does
// with one (active learning, the label audit).
#ifndef FEDMI_TESTS_CLIENT_SQUARES_MODEL_H_
#define FEDMI_TESTS_CLIENT_SQUARES_MODEL_H_

#include <memory>
#include <utility>

#include "client/ml/local_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ml/squares.h"
#include "tests/test_util.h"

namespace fedmi {

inline std::unique_ptr<ml::LocalModel> TrainedOnSquares() {
  auto created = ml::LocalModel::Create(ml::ModelConfig{});
  EXPECT_THAT(created, IsOk());
  ml::TrainOptions train;
  train.epochs = 3;
  train.seed = 2;
  EXPECT_THAT((*created)->Train(ml::MakeSquares(160, 28, 1), train), IsOk());
  return *std::move(created);
}

}  // namespace fedmi

#endif  // FEDMI_TESTS_CLIENT_SQUARES_MODEL_H_
