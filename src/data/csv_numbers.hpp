#pragma once
// What a CSV cell holds as a number, and the separators a file may use (Note [CSV separators],
// cutrain/data/readers.hpp); src/data/csv_reader.cpp reads the cells with them.

#include <string>
#include <string_view>

#include "cutrain/data/readers.hpp"

namespace cutrain::data::detail {

/// The whole cell as a float ("nan" and "inf" included; beyond float's range read as a double and
/// narrowed), its decimal separator `decimal`; false when it is not one number.
bool parse_number(std::string_view cell, float& out, char decimal = '.');
/// parse_number, and finite.
bool parse_float(std::string_view cell, float& out, char decimal);
/// Why a numeric cell did not read as one when the decimal separator may be why ("" if not).
std::string decimal_hint(std::string_view cell, char decimal);
/// Throws cutrain::Error naming `name` unless the options' separator and decimal are readable.
void check_format(const CsvOptions& o, const std::string& name);
/// A feature cell that holds no value: empty, or one of pandas' missing markers (and "?").
bool missing(std::string_view cell);

}  // namespace cutrain::data::detail
