// One table per enum maps values to their stored names and back, so that
// printing and parsing can never disagree. Used for every name of fedmi's
// vocabulary (states, fault points, audit actions).
//
//   constexpr EnumName<Color> kColors[] = {{Color::kRed, "red"}, ...};
//   NameOf(kColors, Color::kRed) == "red"; ParseName(kColors, "red") == kRed
#ifndef FEDMI_COMMON_BASE_ENUM_NAMES_H_
#define FEDMI_COMMON_BASE_ENUM_NAMES_H_

#include <cstddef>
#include <optional>

#include "absl/strings/string_view.h"

namespace fedmi {

template <typename Enum>
struct EnumName {
  Enum value;
  const char* name;
};

// "unknown" for a value missing from the table (a bug the tests catch).
template <typename Enum, size_t N>
const char* NameOf(const EnumName<Enum> (&table)[N], Enum value) {
  for (const EnumName<Enum>& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return "unknown";
}

template <typename Enum, size_t N>
std::optional<Enum> ParseName(const EnumName<Enum> (&table)[N], absl::string_view name) {
  for (const EnumName<Enum>& entry : table) {
    if (name == entry.name) return entry.value;
  }
  return std::nullopt;
}

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_ENUM_NAMES_H_
