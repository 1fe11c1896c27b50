#pragma once
// File readers: IDX (MNIST / Fashion-MNIST, plain or gzip) and CSV. Every malformed input gives
// cutrain::Error naming the file and what is wrong; sizes claimed by a header are checked
// against the bytes present before anything is allocated from them.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <functional>
#include <optional>
#include <span>

#include "cutrain/data/dataset.hpp"

namespace cutrain::data {

/// The whole size a file's header declares, read from the file's first bytes: nullopt while the
/// prefix is too short to say, SIZE_MAX when the header is malformed (its parser reports that).
using DeclaredSize = std::function<std::optional<std::size_t>(std::span<const std::uint8_t>)>;

/// Whether read_file inflates a file that starts with the gzip magic or refuses it (formats that
/// are never compressed, e.g. safetensors, so a gzip stream cannot be a way to inflate a bomb).
enum class Gzip { kInflate, kRefuse };

/// Reads a whole file - or a pipe to its end (`<(zcat a.csv.gz)`, a named pipe; devices are
/// refused) - inflating it when it starts with the gzip magic (zlib). Decompressed
/// output is capped at `max_bytes` and, with `declared`, at the size the header declares: a
/// gzipped file is inflated as a stream and refused as soon as it outgrows its own header (a
/// decompression bomb costs the header's size, not the cap). Without `declared` (CSV), the
/// stream may inflate to 200 times its compressed size (at least 64 MiB; Note [inflation ratio]).
std::vector<std::uint8_t> read_file(const std::string& path,
                                    std::size_t max_bytes = std::size_t{1} << 32,
                                    const DeclaredSize& declared = {}, Gzip gzip = Gzip::kInflate);
std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> bytes, const std::string& name,
                                 std::size_t max_bytes = std::size_t{1} << 32,
                                 const DeclaredSize& declared = {});
/// The sizes the IDX and NumPy headers declare (for read_file).
std::optional<std::size_t> idx_declared_size(std::span<const std::uint8_t> prefix);
std::optional<std::size_t> npy_declared_size(std::span<const std::uint8_t> prefix);

/// An IDX array: magic 0x0000TTDD (TT the element type, DD the number of dimensions), DD
/// big-endian uint32 dimensions, then the elements big-endian. Types: 0x08 uint8, 0x09 int8,
/// 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64; values are converted to float.
struct IdxArray {
  std::vector<std::int64_t> dims;  ///< the header's dimensions
  std::vector<float> values;       ///< the elements, converted to float
  std::uint8_t type = 0;           ///< the element type byte (0x08 uint8, ...)
};
IdxArray parse_idx(std::span<const std::uint8_t> bytes, const std::string& name);
IdxArray read_idx(const std::string& path);

/// Images (N x ...) and labels (N) IDX files as a classification dataset with `classes`
/// classes; features are the raw values (0..255 for MNIST pixels; scale() them).
Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 std::int32_t classes = 10);

/// Fashion-MNIST as Debian's dataset-fashion-mnist installs it (or as downloaded):
/// <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. split: "train" or "test".
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
Dataset load_fashion_mnist(const std::string& dir, const std::string& split);
/// Its ten classes by label (Zalando's names, as torchvision.datasets.FashionMNIST.classes).
inline constexpr const char* kFashionMnistClasses[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/// CSV: comma-separated numbers (or CsvOptions::separator's), one sample per record; cells quoted
/// as RFC 4180 says (Note [CSV quoting], src/data/csv_records.hpp: '"a, b"', '""' for a quote, line
/// breaks inside quotes), and an error names the file's line. The label column is chosen by header
/// name or by index (negative: from the end). With classification, labels are integers in
/// [0, classes) (classes 0: max label + 1), or text: class names, numbered in sorted order
/// (scikit-learn's LabelEncoder) - or by `class_names` when given, so that a test file numbers
/// them as its training file did (Dataset::class_names holds the names). Otherwise the column is
/// a float target. Header auto-detection: the first row is a header when one of its cells is not
/// a number while the same column of the second row is (a text label column says nothing); a
/// lone row when none of its cells is a number; known categories count as numbers, and a first
/// row naming every `categorical` column is a header. Note [numbered header]: so is a first row
/// of at least three cells that are exactly 0, 1, 2, ... (after an empty first cell: the index's),
/// the names pandas gives the columns of an unnamed frame (pd.DataFrame(array).to_csv(index=False)
/// writes them): read as data, that header was one more sample, its label cell a class of its own.
/// Note [index columns] (src/data/csv_index.hpp): a column without a name (or named "Unnamed: N")
/// whose cells number the rows from 0 or 1 - the index pandas' to_csv and R's write.csv write by
/// default - is refused: as a feature it taught the model the file's order.
struct CsvOptions {
  /// Whether the first row is a header.
  enum class Header { kAuto, kYes, kNo } header = Header::kAuto;  ///< kAuto: detected, see above
  std::string label_name;      ///< takes precedence when non-empty
  int label_index = -1;        ///< -1: the last column
  bool classification = true;  ///< integer or text labels (false: float targets)
  std::int32_t classes = 0;    ///< 0: the largest label + 1
  /// Text labels: the classes in label order (e.g. a training file's Dataset::class_names); a
  /// label not among them is an error. Empty: numeric labels, or text numbered in sorted order.
  std::vector<std::string> class_names;
  /// Regression with several targets: these header names, in this order, become the target
  /// (target_width = their count); takes precedence over label_name / label_index.
  std::vector<std::string> target_names;
  /// Data to predict: every column is a feature (no label or target; the label options are
  /// ignored). The Dataset has x only (Trainer::predict reads nothing else).
  bool features_only = false;
  /// One-hot features (pandas.get_dummies, scikit-learn's OneHotEncoder): the columns named here
  /// (header names) hold categories - any text, numbers included, compared as written - and each
  /// becomes one 0/1 feature per category where the column was, the categories in sorted (byte)
  /// order as this file has them; Dataset::categorical records them. Given `categories` instead
  /// (a training file's Dataset::categorical), a test or prediction file is encoded with those,
  /// matched by column position as numeric features are, and a category not among them is an
  /// error naming it. At most kMaxCategories per column (an id column would add a feature per row).
  std::vector<std::string> categorical;
  std::vector<CategoricalColumn> categories;  ///< known one-hot columns (a prediction file)
  /// Columns to leave out, by header name - identifiers, free text: neither features nor
  /// targets (pandas' usecols without them). Each must be in a labelled file's header; a
  /// features-only file (new rows to predict) may lack them.
  std::vector<std::string> drop_columns;
  /// Note [id column]: a column, by header name, that identifies each row - Kaggle's
  /// PassengerId, a customer number: left out of the features like a dropped column, its cells
  /// kept as written in Dataset::row_ids, so predictions can be written beside their rows' ids.
  /// A labelled file must have it; a features-only file without it (or without a header) reads
  /// with row_ids empty, for the caller to refuse or note.
  std::string id_column;
  /// Missing numeric features - an empty cell, NA, N/A, n/a, NaN, nan, null, NULL or ? - read as
  /// NaN for data::Imputer to fill (train only once they are filled: Dataset::validate refuses
  /// NaN). Off: such a cell is an error naming it. Labels and targets must always be present.
  bool allow_missing = false;
  /// Note [CSV separators]: what separates cells - ',' (RFC 4180), ';' (what Excel writes where
  /// the decimal separator is a comma: most of continental Europe, Brazil, ...), a tab (a TSV) or
  /// '|'. Quoting works alike with each; a tab is then no blank to trim.
  char separator = ',';
  /// The decimal separator of numeric cells: '.' or ',' (pandas' read_csv(decimal=',')), the
  /// latter with a separator other than ','. With ',' a numeric cell holding '.' is an error, not
  /// a number: "1.234" may be a thousands separator's 1234 or a decimal point's 1.234.
  char decimal = '.';
  /// Note [a label column left a feature]: whether the caller chose the label column (by name or
  /// index). false - the last column taken by default, as cutrain-train does without --target -
  /// makes a feature column named label, labels, target, class or y (any case) an error asking
  /// which column is meant: Kaggle's MNIST and Fashion-MNIST CSVs put "label" first, and the
  /// last pixel became the class to predict, the true label a feature.
  bool label_chosen = true;
};
inline constexpr std::size_t kMaxCategories = 65536;
Dataset parse_csv(std::string_view text, const std::string& name, const CsvOptions& options);
Dataset read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace cutrain::data
