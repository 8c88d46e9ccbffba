#include "trainer/model/safetensors.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/file.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/subprocess.h"

namespace prolong::safetensors {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::AllOfArray;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Matcher;
using ::testing::UnorderedElementsAre;

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

std::string LengthPrefix(uint64_t n) {
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return prefix;
}

// A file from a header and data written by hand.
std::string HandMade(const std::string& header, const std::string& data) {
  return LengthPrefix(header.size()) + header + data;
}

absl::Status ParseError(const std::string& bytes) {
  return SafetensorsFile::FromBytes(bytes, "bad.safetensors").status();
}

class SafetensorsTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_ = testing::MakeTempDir();
};

TEST_F(SafetensorsTest, RoundTripsDTypesShapesEmptyTensorsAndMetadata) {
  const std::string f32 = Bytes<float>({0, 1.5, -2, 3, 4e10, -5e-10});
  const std::string bf16 = Bytes<uint16_t>({0x3f80, 0x4000, 0xc040, 0x7f80});
  const std::string f16 = Bytes<uint16_t>({0x3c00, 0x4000, 0xfbff});
  const std::string i64 = Bytes<int64_t>({-1, int64_t{1} << 40});
  const std::string i32 = Bytes<int32_t>({1, -2, 3, -4, 5});
  const std::string u8 = Bytes<uint8_t>({1, 2, 255});
  const std::string f64 = Bytes<double>({3.25});
  const std::vector<NamedTensor> tensors = {
      {"model.f32", {DType::kF32, {2, 3}, f32}},  {"bf16", {DType::kBF16, {4}, bf16}},
      {"f16", {DType::kF16, {3, 1}, f16}},        {"i64", {DType::kI64, {2}, i64}},
      {"i32", {DType::kI32, {5}, i32}},           {"u8", {DType::kU8, {1, 3}, u8}},
      {"empty", {DType::kF32, {0, 4}, ""}},       {"scalar", {DType::kF64, {}, f64}},
      {"empty.bf16", {DType::kBF16, {2, 0}, ""}},
  };
  const Metadata metadata = {{"format", "pt"}, {"note", "a \"quoted\"\nline, ünïcode"}};
  ASSERT_OK(WriteFile(Path("t.safetensors"), tensors, metadata));
  EXPECT_FALSE(std::filesystem::exists(Path("t.safetensors.tmp")));

  auto file = SafetensorsFile::Open(Path("t.safetensors"));
  ASSERT_OK(file);
  EXPECT_EQ((*file)->metadata(), metadata);
  EXPECT_EQ((*file)->names().size(), tensors.size());
  for (const NamedTensor& t : tensors) {
    const TensorView* view = (*file)->Find(t.name);
    ASSERT_NE(view, nullptr) << t.name;
    EXPECT_EQ(view->dtype, t.tensor.dtype) << t.name;
    EXPECT_EQ(view->shape, t.tensor.shape) << t.name;
    EXPECT_EQ(view->data, t.tensor.data) << t.name;
    // The writer's dtype order keeps every tensor aligned to its element size.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(view->data.data()) % DTypeSize(view->dtype), 0u)
        << t.name;
  }
  EXPECT_EQ((*file)->Find("absent"), nullptr);

  auto in_memory = Serialize(tensors, metadata);
  ASSERT_OK(in_memory);
  EXPECT_EQ(*in_memory, *ReadFile(Path("t.safetensors")));
}

TEST_F(SafetensorsTest, LayoutIsTheReferenceWritersByteForByte) {
  // Tensors go by dtype (8-byte first) then name; metadata first; the JSON has no spaces and is
  // padded with spaces to a multiple of 8; the length prefix is little-endian.
  const std::string a = Bytes<int64_t>({7});
  const std::string b = Bytes<float>({1, 2});
  const std::string c = Bytes<uint16_t>({0x3f80, 0x4000, 0x4040});
  const std::vector<NamedTensor> tensors = {
      {"b", {DType::kF32, {2}, b}},
      {"a", {DType::kI64, {1}, a}},
      {"c", {DType::kBF16, {3}, c}},
  };
  const std::string header = R"({"__metadata__":{"format":"pt"},)"
                             R"("a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                             R"("c":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})"
                             "     ";
  ASSERT_EQ(header.size(), 200u);
  const std::string expected = std::string("\xc8\0\0\0\0\0\0\0", 8) + header + a + b + c;
  auto bytes = Serialize(tensors, {{"format", "pt"}});
  ASSERT_OK(bytes);
  EXPECT_EQ(*bytes, expected);

  ASSERT_OK(WriteFile(Path("exact.safetensors"), tensors, {{"format", "pt"}}));
  EXPECT_EQ(*ReadFile(Path("exact.safetensors")), expected);
}

TEST_F(SafetensorsTest, EdgeLayoutsMatchTheReferenceWriter) {
  // No tensors, no metadata: "{}" and six spaces.
  EXPECT_EQ(*Serialize({}), std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
  // A 65-byte header gets 7 spaces; the data follows unchanged.
  const std::string data = Bytes<float>({0, 1, 2, 3, 4, 5});
  const std::string expected =
      std::string("\x48\0\0\0\0\0\0\0", 8) +
      R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" + "       " + data;
  EXPECT_EQ(*Serialize({{"attn0", {DType::kF32, {1, 1, 2, 3}, data}}}), expected);
}

TEST_F(SafetensorsTest, ReadsFilesOfOtherWriters) {
  // Name order rather than dtype order, no padding, metadata last.
  const std::string header =
      R"({"x":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
      R"("y":{"dtype":"F32","shape":[1],"data_offsets":[3,7]},"__metadata__":{}})";
  const std::string bytes = HandMade(header, "abc" + Bytes<float>({2.5}));
  auto file = SafetensorsFile::FromBytes(bytes, "other");
  ASSERT_OK(file);
  EXPECT_THAT((*file)->names(), ElementsAre("x", "y"));
  float y;
  std::memcpy(&y, (*file)->Find("y")->data.data(), 4);
  EXPECT_EQ(y, 2.5f);
}

TEST_F(SafetensorsTest, CorruptFilesNameTheProblem) {
  auto expect_error = [](const std::string& bytes, const std::vector<std::string>& parts) {
    std::vector<Matcher<const std::string&>> message = {HasSubstr("bad.safetensors: ")};
    for (const std::string& part : parts) message.push_back(HasSubstr(part));
    EXPECT_THAT(ParseError(bytes),
                StatusIs(absl::StatusCode::kInvalidArgument, AllOfArray(message)));
  };
  const std::string two = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string good = HandMade(two, Bytes<float>({1, 2}));
  ASSERT_OK(ParseError(good));

  // Truncated anywhere.
  expect_error(good.substr(0, 5), {"5 bytes, too short"});
  expect_error(good.substr(0, 20), {"header length 54 runs past the end of the file"});
  expect_error(good.substr(0, good.size() - 4),
               {"tensor \"w\"", "data_offsets [0, 8] run past the end of the data (4 bytes"});
  // Offsets out of range.
  expect_error(HandMade(R"({"w":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}})",
                        Bytes<float>({1, 2})),
               {"tensor \"w\"", "[0, 400] run past the end"});
  expect_error(
      HandMade(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", Bytes<float>({1, 2})),
      {"tensor \"w\"", "end before they begin"});
  // Overlapping and gaps.
  expect_error(HandMade(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        Bytes<float>({1, 2, 3})),
               {"tensor \"b\" (data_offsets [4, 12]) overlaps tensor \"a\" (data_offsets [0, 8])"});
  expect_error(HandMade(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                        Bytes<float>({1, 2, 3})),
               {"data bytes [4, 8) before tensor \"b\" belong to no tensor"});
  expect_error(HandMade(two, Bytes<float>({1, 2, 3})), {"4 data bytes after the last tensor"});
  // Size, dtype and shape.
  expect_error(
      HandMade(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", Bytes<float>({1, 2})),
      {"tensor \"w\"", "hold 8 bytes, but F32 [3] needs 12"});
  expect_error(
      HandMade(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", Bytes<float>({1, 2})),
      {"tensor \"w\"", "unknown dtype \"F33\""});
  expect_error(
      HandMade(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", Bytes<float>({1, 2})),
      {"tensor \"w\"", "shape [-2] is not of non-negative integers"});
  expect_error(HandMade(R"({"w":{"dtype":"F32","shape":[2]}})", Bytes<float>({1, 2})),
               {"tensor \"w\"", "data_offsets"});
  expect_error(HandMade(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],)"
                        R"("data_offsets":[0,8]}})",
                        Bytes<float>({1, 2})),
               {"tensor \"w\"", "overflows"});
  // The header itself.
  expect_error(HandMade(R"({"w":)", ""), {"header is not valid JSON"});
  expect_error(HandMade(R"([1, 2])", ""), {"header does not start with '{'"});
  expect_error(HandMade(R"({"__metadata__":{"format":1}})", ""),
               {"__metadata__ \"format\" is not a string"});
  expect_error(LengthPrefix(uint64_t{1} << 40) + "{}", {"exceeds the limit"});
  // What Serialize would refuse to write back.
  expect_error(
      HandMade(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", Bytes<float>({1, 2})),
      {"a tensor has an empty name"});
}

TEST_F(SafetensorsTest, WriterRejectsInconsistentTensors) {
  const std::string eight = Bytes<float>({1, 2});
  auto error = [&](const std::vector<NamedTensor>& tensors) {
    return std::string(Serialize(tensors).status().message());
  };
  EXPECT_THAT(error({{"w", {DType::kF32, {3}, eight}}}),
              HasSubstr("tensor \"w\": 8 bytes of data, but F32 [3] needs 12"));
  EXPECT_THAT(error({{"w", {DType::kF32, {int64_t{1} << 62}, eight}}}),
              HasSubstr("tensor \"w\": shape [4611686018427387904] overflows"));
  EXPECT_THAT(error({{"w", {DType::kF32, {2}, eight}}, {"w", {DType::kF32, {2}, eight}}}),
              HasSubstr("tensor \"w\" appears twice"));
  EXPECT_THAT(error({{"__metadata__", {DType::kF32, {2}, eight}}}), HasSubstr("reserved"));
  EXPECT_THAT(error({{"", {DType::kF32, {2}, eight}}}), HasSubstr("empty name"));
  EXPECT_THAT(error({{"bad\xff", {DType::kF32, {2}, eight}}}), HasSubstr("not valid UTF-8"));

  const absl::Status status =
      WriteFile(Path("missing/dir/t.safetensors"), {{"w", {DType::kF32, {2}, eight}}});
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition,
                               HasSubstr("missing/dir/t.safetensors")));
}

TEST_F(SafetensorsTest, OpenReportsMissingFiles) {
  const absl::Status status = SafetensorsFile::Open(Path("nope.safetensors")).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.safetensors")));
  EXPECT_THAT(Checkpoint::Open(dir_), StatusIs(absl::StatusCode::kNotFound));
  // A directory opens, but is no file to map.
  EXPECT_THAT(SafetensorsFile::Open(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a regular file")));
}

TEST_F(SafetensorsTest, ShardedWriteReadsBackEqual) {
  std::vector<std::string> data;
  for (int i = 0; i < 7; ++i) {
    std::vector<float> values(i == 4 ? 30 : 10);
    for (size_t j = 0; j < values.size(); ++j) values[j] = 100 * i + j;
    data.push_back(Bytes(values));
  }
  std::vector<NamedTensor> tensors;
  for (int i = 0; i < 7; ++i) {
    tensors.push_back({"t" + std::to_string(i),
                       {DType::kF32, {static_cast<int64_t>(data[i].size() / 4)}, data[i]}});
  }
  // 40-byte tensors in shards of at most 100 bytes; the 120-byte t4 alone.
  auto written = WriteCheckpoint(dir_, tensors, 100, {{"format", "pt"}});
  ASSERT_OK(written);
  EXPECT_THAT(*written,
              ElementsAre("model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                          "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
                          "model.safetensors.index.json"));
  const nlohmann::json index = nlohmann::json::parse(*ReadFile(Path(kIndexFileName)));
  EXPECT_EQ(index["metadata"]["total_size"], 6 * 40 + 120);
  EXPECT_EQ(index["weight_map"]["t0"], "model-00001-of-00004.safetensors");
  EXPECT_EQ(index["weight_map"]["t1"], "model-00001-of-00004.safetensors");
  EXPECT_EQ(index["weight_map"]["t3"], "model-00002-of-00004.safetensors");
  EXPECT_EQ(index["weight_map"]["t4"], "model-00003-of-00004.safetensors");
  EXPECT_EQ(index["weight_map"]["t6"], "model-00004-of-00004.safetensors");
  for (const std::string& name : *written) {
    if (name == kIndexFileName) continue;
    auto shard = SafetensorsFile::Open(Path(name));
    ASSERT_OK(shard);
    EXPECT_LE((*shard)->data_bytes(), 120);
    EXPECT_EQ((*shard)->metadata().at("format"), "pt");
  }

  for (const std::string& path : {dir_, Path(kIndexFileName)}) {
    auto checkpoint = Checkpoint::Open(path);
    ASSERT_OK(checkpoint);
    EXPECT_EQ((*checkpoint)->names().size(), 7u);
    EXPECT_EQ((*checkpoint)->total_bytes(), 360);
    for (const NamedTensor& t : tensors) {
      const TensorView* view = (*checkpoint)->Find(t.name);
      ASSERT_NE(view, nullptr) << t.name;
      EXPECT_EQ(view->shape, t.tensor.shape);
      EXPECT_EQ(view->data, t.tensor.data);
    }
    EXPECT_THAT((*checkpoint)->FileOf("t4"), HasSubstr("model-00003-of-00004.safetensors"));
  }

  // Rewritten as one file: the shards and the index go, so the directory holds one checkpoint.
  written = WriteCheckpoint(dir_, {tensors[0]}, 1000);
  ASSERT_OK(written);
  EXPECT_THAT(*written, ElementsAre("model.safetensors"));
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    files.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(files, UnorderedElementsAre("model.safetensors"));
  auto checkpoint = Checkpoint::Open(dir_);
  ASSERT_OK(checkpoint);
  EXPECT_THAT((*checkpoint)->names(), ElementsAre("t0"));
}

TEST_F(SafetensorsTest, InconsistentIndexIsAnError) {
  const std::string eight = Bytes<float>({1, 2});
  ASSERT_OK(WriteFile(Path("a.safetensors"),
                      {{"x", {DType::kF32, {2}, eight}}, {"y", {DType::kF32, {2}, eight}}}));
  auto open_with = [&](const std::string& weight_map) {
    EXPECT_OK(WriteFileAtomically(Path(kIndexFileName), R"({"weight_map": )" + weight_map + "}"));
    return Checkpoint::Open(dir_).status();
  };
  EXPECT_OK(open_with(R"({"x": "a.safetensors", "y": "a.safetensors"})"));

  absl::Status status =
      open_with(R"({"x": "a.safetensors", "y": "a.safetensors", "z": "a.safetensors"})");
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("weight_map places tensor \"z\" in a.safetensors, which does not hold it"));
  status = open_with(R"({"x": "a.safetensors"})");
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("a.safetensors holds tensor \"y\", which the weight_map does not place"));
  status = open_with(R"({"x": "../a.safetensors"})");
  EXPECT_THAT(std::string(status.message()), HasSubstr("is not inside the checkpoint directory"));
  status = open_with(R"({"x": "a.safetensors\u0000.bak", "y": "a.safetensors"})");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("holds a NUL byte")));
  status = open_with(R"({"x": ".", "y": "a.safetensors"})");
  EXPECT_THAT(status,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a regular file")));
  status = open_with(R"({"x": "b.safetensors"})");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound, HasSubstr("b.safetensors")));
}

}  // namespace
}  // namespace prolong::safetensors
