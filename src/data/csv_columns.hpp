#pragma once
// Columns of a CSV file that are not what they seem; src/data/csv_reader.cpp refuses them.
//
// Note [index columns]: pandas' DataFrame.to_csv writes the frame's index as a first column
// unless index=False, its header cell empty; R's write.csv writes the row names the same way
// (row.names = TRUE by default); a file read by pandas and written again names it "Unnamed: 0".
// Read as a feature, the row number trained the model on the files' order - a test accuracy of
// chance, silently. A column so named whose cells number the rows from 0 or 1 is refused, saying
// how to leave it out.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cutrain/data/readers.hpp"
#include "src/data/csv_records.hpp"

namespace cutrain::data::detail {

/// Throws cutrain::Error naming `name`, the column and how to leave it out when a column of
/// `header` (the data rows from record `first`) is such an index.
void check_index_columns(CsvRecords& records, const std::vector<std::string>& header,
                         std::size_t first, const std::string& name, const CsvOptions& o);

/// Note [a label column left a feature] (readers.hpp, CsvOptions::label_chosen): throws naming
/// a feature column (place -1) named label, labels, target, class or y, any case, when the label
/// column `label` was taken by default.
void check_default_label(const std::vector<std::string_view>& header,
                         const std::vector<long>& place, std::size_t label,
                         const std::string& name);

}  // namespace cutrain::data::detail
