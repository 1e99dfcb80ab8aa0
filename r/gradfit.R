# gradfit from R, through reticulate: small, explicit conversions between R and gradfit.
#
#   Sys.setenv(RETICULATE_PYTHON = "r/.venv/bin/python")   # the Python `make test-r` builds
#   source("r/gradfit.R")
#   gradfit <- reticulate::import("gradfit")
#
# R -> Python (always float64 copies, shape (n, d) as in R, rows and columns where R has them):
#   gf_matrix(x)   NumPy array (n, d)        x: numeric matrix, data.frame or vector (one column)
#   gf_tensor(x)   torch tensor (n, d)       dtype = "float64" (default) or "float32"
#   gf_frame(x)    pandas DataFrame          column names kept (scikit-learn's feature_names_in_)
#   gf_vector(x)   NumPy array (n,)          one target for GradientDescentRegressor
# Python -> R:
#   gf_to_r(x)     R matrix or vector from a tensor, NumPy array, pandas DataFrame or number
#   gf_coef(w, b)  coefficients laid out as coef(lm(cbind(y1, y2) ~ ...)) lays them out
#   gf_try(expr)   runs expr; a Python exception becomes an R error of class "gradfit_error"
#                  carrying gradfit's own message, and each Python warning raised meanwhile
#                  (RankDeficiencyWarning, ConvergenceWarning, ...) an R warning of class
#                  "gradfit_warning", which suppressWarnings(), tryCatch(warning = ) and
#                  withCallingHandlers() see: gf_try(gradfit$ols(X, y)). Without gf_try a Python
#                  warning is only printed by Python, out of R's reach.
#
# Integer (and logical) columns are accepted and become doubles. NA, NaN and Inf are refused with
# gradfit's own message (gradfit.validation), plus where the value sits in R's terms. Pass data
# through these functions rather than handing R objects to gradfit directly: reticulate turns an
# integer matrix into int32 (gradfit would then train in float32) and an integer NA into
# -2147483648 (gradfit refuses that value in int32 input, naming NA_integer_ and gf_matrix()).

.gf <- new.env(parent = emptyenv())

# Sourcing this file starts Python (the one RETICULATE_PYTHON names) and, before anything imports
# torch, loads torch's own library so that it keeps its own BLAS. In an R process the symbols of
# R's BLAS (Debian: the reference BLAS, libblas.so.3) are loaded first, and torch's exported
# sgemm_/dgemm_ would bind to them: every matrix product of torch then runs about 50 times
# slower (and rounds differently) than in Python. Loading libtorch_cpu with RTLD_DEEPBIND (glibc)
# makes it use its own. Where torch was imported already, this warns instead.
.gf_prepare_python <- function() {
  reticulate::py_available(initialize = TRUE)
  state <- reticulate::py_run_string(local = TRUE, convert = TRUE, "
import ctypes, importlib.util, os, sys
numpy_version = importlib.import_module('numpy').__version__
preloaded = getattr(sys, '_gradfit_r_torch_preloaded', False)  # sourced before in this session
torch_loaded = 'torch' in sys.modules
spec = importlib.util.find_spec('torch')
deepbind = getattr(os, 'RTLD_DEEPBIND', None)
if not preloaded and not torch_loaded and spec is not None and spec.origin and deepbind:
    lib = os.path.join(os.path.dirname(spec.origin), 'lib', 'libtorch_cpu.so')
    if os.path.exists(lib):
        ctypes.CDLL(lib, mode=os.RTLD_NOW | os.RTLD_GLOBAL | deepbind)
        preloaded = sys._gradfit_r_torch_preloaded = True
")
  .gf_check_numpy(state$numpy_version)
  if (state$torch_loaded && !state$preloaded && Sys.info()[["sysname"]] == "Linux") {
    warning(paste(
      "torch was imported before r/gradfit.R was sourced: its matrix products may run on R's",
      "BLAS (much slower). Source r/gradfit.R first in a fresh R session."
    ), call. = FALSE)
  }
  .gf$torch_preloaded <- state$preloaded
  invisible(state)
}

# The Python modules gradfit.R uses, imported on first use.
.gf_modules <- function() {
  if (is.null(.gf$np)) {
    .gf$np <- reticulate::import("numpy", convert = FALSE)
    .gf$torch <- reticulate::import("torch", convert = FALSE)
    .gf$validation <- reticulate::import("gradfit.validation", convert = FALSE)
    .gf$warnings <- reticulate::import("warnings", convert = FALSE)
    .gf$builtins <- reticulate::import_builtins(convert = TRUE)
    # The same object, as a handle that does not convert its results to R (objects reached
    # through a module imported with convert = TRUE would turn tensor$numpy() into R at once).
    .gf$plain <- reticulate::py_eval("lambda obj: obj", convert = FALSE)
  }
  .gf
}

# reticulate before 1.38 (Debian 12 ships 1.28) was built against NumPy 1 and cannot convert
# arrays with NumPy 2: say so, and what to do, instead of failing later in a conversion.
.gf_check_numpy <- function(numpy_version) {
  reticulate_version <- utils::packageVersion("reticulate")
  if (reticulate_version < "1.38" && package_version(numpy_version) >= "2") {
    stop(sprintf(paste(
      "reticulate %s cannot exchange arrays with NumPy %s (it needs NumPy < 2; reticulate",
      "1.38 or later works with NumPy 2). Point reticulate at a Python with NumPy < 2, such",
      "as the one `make test-r` builds: Sys.setenv(RETICULATE_PYTHON = \"r/.venv/bin/python\")",
      "before anything starts Python; or install a newer reticulate. Python in use: %s"),
      reticulate_version, numpy_version, reticulate::py_config()$python), call. = FALSE)
  }
}

# ---------------------------------------------------------------------------------------------
# errors

# The message of a Python exception as gradfit wrote it, without reticulate's decorations, and
# the exception's class name.
.gf_py_error <- function(e) {
  msg <- conditionMessage(e)
  msg <- sub("\\s*Run `reticulate::py_last_error\\(\\)` for details\\.?\\s*$", "", msg, perl = TRUE)
  msg <- sub("\\s+$", "", msg, perl = TRUE)
  parts <- regmatches(msg, regexec("(?s)^([A-Za-z_][A-Za-z0-9_.]*): (.*)$", msg, perl = TRUE))[[1]]
  if (length(parts) == 3) {
    list(type = sub("^.*\\.", "", parts[2]), message = parts[3])
  } else {
    list(type = "Error", message = msg)
  }
}

.gf_stop <- function(message, type = "Error", call = NULL) {
  stop(structure(
    class = c("gradfit_error", "error", "condition"),
    list(message = message, call = call, type = type)
  ))
}

# Evaluate `expr`; a Python exception becomes an R error of class "gradfit_error" whose message
# is the exception's own (e.g. a DataError naming the file, column and row) and whose `type` is
# the exception's class name ("DataError", "ValidationError", "DivergenceError", ...). The
# Python warnings raised meanwhile are recorded (warnings.catch_warnings(record = True), every
# one: simplefilter("always")) and then signalled in R, in order, before the value is returned
# or the error raised: each an R warning of classes "gradfit_warning", "warning" and
# "condition" whose message is "gradfit <Category>: <Python's message>" and whose `type` is the
# category's name ("RankDeficiencyWarning", "ConvergenceWarning", ...).
gf_try <- function(expr) {
  py <- .gf_modules()
  recorder <- py$warnings$catch_warnings(record = TRUE)
  caught <- recorder$`__enter__`()
  py$warnings$simplefilter("always")
  outcome <- tryCatch(list(value = expr), error = function(e) list(error = e))
  recorder$`__exit__`(NULL, NULL, NULL)
  .gf_warn(caught)
  e <- outcome$error
  if (is.null(e)) {
    return(outcome$value)
  }
  if (inherits(e, "gradfit_error")) stop(e)
  err <- .gf_py_error(e)
  .gf_stop(sprintf("gradfit %s: %s", err$type, err$message), err$type)
}

# Signal each recorded Python warning (a list of warnings.WarningMessage) as an R warning.
.gf_warn <- function(caught) {
  py <- .gf_modules()
  for (i in seq_len(py$builtins$len(caught))) {
    w <- reticulate::py_get_item(caught, i - 1L)
    type <- reticulate::py_to_r(reticulate::py_get_attr(w$category, "__name__"))
    message <- py$builtins$str(w$message) # builtins convert: an R string
    warning(structure(
      class = c("gradfit_warning", "warning", "condition"),
      list(message = sprintf("gradfit %s: %s", type, message), call = NULL, type = type)
    ))
  }
  invisible(NULL)
}

# ---------------------------------------------------------------------------------------------
# R -> Python

.gf_is_py <- function(x) inherits(x, "python.builtin.object")

# x as a double matrix with its dimnames; refuses what is not numbers, naming the column.
.gf_numeric_matrix <- function(x, name) {
  if (is.data.frame(x)) {
    ok <- vapply(x, function(col) is.numeric(col) || is.logical(col), logical(1))
    if (!all(ok)) {
      bad <- names(x)[!ok]
      kinds <- vapply(x[!ok], function(col) class(col)[1], character(1))
      .gf_stop(sprintf(
        "%s: column%s %s %s not numeric (%s); gradfit needs numbers: drop %s or convert %s",
        name, if (length(bad) > 1) "s" else "", paste0("'", bad, "'", collapse = ", "),
        if (length(bad) > 1) "are" else "is", paste(kinds, collapse = ", "),
        if (length(bad) > 1) "them" else "it", if (length(bad) > 1) "them" else "it"),
        "ValidationError")
    }
    rn <- attr(x, "row.names")
    automatic <- is.integer(rn) || identical(rn, as.character(seq_len(nrow(x))))
    m <- matrix(
      as.double(unlist(x, use.names = FALSE)), nrow = nrow(x), ncol = ncol(x),
      dimnames = list(if (automatic) NULL else as.character(rn), names(x))
    )
    return(m)
  }
  if (is.vector(x) && !is.list(x) && is.null(dim(x))) x <- as.matrix(x)
  if (!is.matrix(x) || !(is.numeric(x) || is.logical(x))) {
    .gf_stop(sprintf(
      "%s must be a numeric matrix, data.frame or vector, got %s",
      name, paste(class(x), collapse = "/")
    ), "ValidationError")
  }
  storage.mode(x) <- "double" # integer and logical: exact; integer NA -> NA_real_
  x
}

# Where the first non-finite value sits, in R's terms (gradfit counts rows and columns from 0 and
# finds the first one row by row; this names the same value).
.gf_where <- function(m, name, vector = FALSE) {
  bad <- which(!is.finite(m), arr.ind = TRUE)
  if (!length(bad)) {
    return("")
  }
  bad <- bad[order(bad[, 1], bad[, 2]), , drop = FALSE][1, ]
  value <- m[bad[1], bad[2]]
  is_na <- is.na(value) && !is.nan(value)
  column <- colnames(m)[bad[2]]
  sprintf(
    " [in R: %s%s is %s; Python counts %s from 0]",
    if (vector) sprintf("%s[%d]", name, bad[1]) else sprintf("%s[%d, %d]", name, bad[1], bad[2]),
    if (is.null(column) || vector) "" else sprintf(" (column '%s')", column),
    if (is_na) "NA, which is NaN in Python" else format(value),
    if (vector) "positions" else "rows and columns"
  )
}

# Run gradfit's own validation on `arr` (a NumPy array from `m`): its message, not an R crash.
.gf_validate <- function(check, arr, m, name, vector = FALSE) {
  tryCatch(check(arr, name), error = function(e) {
    err <- .gf_py_error(e)
    .gf_stop(paste0("gradfit: ", err$message, .gf_where(m, name, vector)), err$type)
  })
  invisible(arr)
}

# A C-ordered float64 copy of R matrix `m` (R is column-major; element [i, j] stays [i-1][j-1]).
.gf_numpy <- function(m) {
  py <- .gf_modules()
  py$np$array(m, dtype = "float64", order = "C", copy = TRUE)
}

.gf_tag <- function(obj, dimnames) {
  attr(obj, "gf_dimnames") <- dimnames
  obj
}

# R matrix, data.frame or vector -> NumPy float64 array (n, d), validated by gradfit. The R
# handle keeps the dimnames (attribute "gf_dimnames"), which gf_to_r() restores.
gf_matrix <- function(x, name = "X") {
  m <- .gf_numeric_matrix(x, name)
  arr <- .gf_numpy(m)
  .gf_validate(.gf_modules()$validation$as_matrix, arr, m, name)
  .gf_tag(arr, dimnames(m))
}

# As gf_matrix(), as a torch tensor: float64 by default; "float32" is what the tutorial's own
# np$array(..., dtype = 'float32') gives, and what reproduces its numbers.
gf_tensor <- function(x, dtype = c("float64", "float32"), name = "X") {
  dtype <- match.arg(dtype)
  arr <- gf_matrix(x, name)
  py <- .gf_modules()
  .gf_tag(py$torch$from_numpy(arr)$to(dtype = py$torch[[dtype]]), attr(arr, "gf_dimnames"))
}

# R data.frame (or matrix with column names) -> pandas DataFrame of float64 columns with the
# same names (and the row names, when they are not 1..n), validated by gradfit. This is what
# GradientDescentRegressor needs to learn feature_names_in_.
gf_frame <- function(x, name = "X") {
  m <- .gf_numeric_matrix(x, name)
  if (is.null(colnames(m))) {
    .gf_stop(sprintf(
      "%s has no column names; give it some (colnames(x) <- ...) or use gf_matrix()", name
    ), "ValidationError")
  }
  if (!reticulate::py_module_available("pandas")) {
    .gf_stop(sprintf(paste(
      "gf_frame() needs pandas in the Python reticulate uses (%s): pip install pandas",
      "(r/.venv has it), or use gf_matrix()"), reticulate::py_config()$python))
  }
  arr <- gf_matrix(m, name)
  pandas <- reticulate::import("pandas", convert = FALSE)
  index <- if (is.null(rownames(m))) NULL else as.list(rownames(m))
  .gf_tag(pandas$DataFrame(arr, columns = as.list(colnames(m)), index = index), dimnames(m))
}

# R numeric vector (or one-column data.frame / matrix) -> NumPy float64 array (n,), validated.
gf_vector <- function(x, name = "y") {
  m <- .gf_numeric_matrix(x, name)
  if (ncol(m) != 1) {
    .gf_stop(sprintf("%s must be a vector or have one column, got %d columns", name, ncol(m)),
             "ValidationError")
  }
  labels <- if (is.null(dim(x))) names(x) else rownames(m)
  arr <- .gf_numpy(m)$reshape(-1L)
  .gf_validate(.gf_modules()$validation$as_targets, arr, m, name, vector = is.null(dim(x)))
  .gf_tag(arr, list(labels))
}

# ---------------------------------------------------------------------------------------------
# Python -> R

# Python value -> plain R value (matrix, vector or number); dimnames found on the way.
.gf_r_value <- function(x) {
  if (is.data.frame(x)) { # a pandas DataFrame that reticulate already converted
    m <- .gf_numeric_matrix(x, "x")
    return(list(value = m, dimnames = dimnames(m)))
  }
  if (!.gf_is_py(x)) {
    return(list(value = x, dimnames = NULL))
  }
  py <- .gf_modules()
  found <- attr(x, "gf_dimnames", exact = TRUE)
  x <- reticulate::py_call(py$plain, x)
  if (py$builtins$isinstance(x, py$torch$Tensor)) {
    x <- x$detach()$cpu()$to(dtype = py$torch$float64)$numpy()
  } else if (reticulate::py_module_available("pandas")) {
    pandas <- reticulate::import("pandas", convert = FALSE)
    if (py$builtins$isinstance(x, pandas$DataFrame)) {
      automatic <- py$builtins$isinstance(x$index, pandas$RangeIndex)
      found <- list(
        if (automatic) NULL else as.character(unlist(reticulate::py_to_r(x$index$tolist()))),
        as.character(unlist(reticulate::py_to_r(x$columns$tolist())))
      )
      x <- x$to_numpy(dtype = "float64")
    }
  }
  if (py$builtins$isinstance(x, py$np$ndarray)) {
    numeric <- reticulate::py_to_r(py$np$issubdtype(x$dtype, py$np$number)) ||
      reticulate::py_to_r(py$np$issubdtype(x$dtype, py$np$bool_))
    if (!numeric) {
      .gf_stop(sprintf("gf_to_r() converts numeric arrays, got dtype %s",
                       reticulate::py_str(x$dtype)))
    }
    if (reticulate::py_to_r(py$np$issubdtype(x$dtype, py$np$floating))) {
      x <- x$astype("float64")
    }
  }
  list(value = reticulate::py_to_r(x), dimnames = found)
}

# A tensor, NumPy array, pandas DataFrame or Python number as an R matrix (2-D), vector (1-D) or
# number. Names: the arguments, else those gf_matrix()/gf_frame()/gf_tensor() kept, else the
# DataFrame's.
gf_to_r <- function(x, rownames = NULL, colnames = NULL, names = NULL) {
  got <- .gf_r_value(x)
  value <- got$value
  dn <- got$dimnames
  if (is.matrix(value)) {
    rn <- if (is.null(rownames)) dn[[1]] else rownames
    cn <- if (is.null(colnames)) (if (length(dn) > 1) dn[[2]] else NULL) else colnames
    if (!is.null(rn) && length(rn) != nrow(value)) {
      .gf_stop(sprintf("%d row names for %d rows", length(rn), nrow(value)))
    }
    if (!is.null(cn) && length(cn) != ncol(value)) {
      .gf_stop(sprintf("%d column names for %d columns", length(cn), ncol(value)))
    }
    dimnames(value) <- if (is.null(rn) && is.null(cn)) NULL else list(rn, cn)
  } else if (is.numeric(value) || is.logical(value)) {
    value <- as.vector(value)
    nm <- if (is.null(names)) (if (length(dn) == 1) dn[[1]] else NULL) else names
    if (!is.null(nm)) {
      if (length(nm) != length(value)) {
        .gf_stop(sprintf("%d names for %d values", length(nm), length(value)))
      }
      names(value) <- nm
    }
  }
  value
}

# Weight (k, d) and bias (k,) as R's lm() lays out the coefficients of cbind(y1, ..., yk) ~ x:
# a (1 + d) x k matrix, rows "(Intercept)" and the features, one column per target.
gf_coef <- function(weight, bias, features = NULL, targets = NULL) {
  w <- gf_to_r(weight)
  b <- gf_to_r(bias)
  if (!is.matrix(w)) w <- matrix(w, nrow = 1)
  out <- t(cbind(b, w))
  features <- if (is.null(features)) colnames(w) else as.character(features)
  targets <- if (is.null(targets)) rownames(w) else as.character(targets)
  dimnames(out) <- list(
    c("(Intercept)", if (is.null(features)) paste0("x", seq_len(ncol(w))) else features),
    targets
  )
  out
}

.gf_prepare_python()
