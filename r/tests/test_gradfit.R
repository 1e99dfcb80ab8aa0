# Tests of gradfit from R (r/gradfit.R, r/tutorial.R): plain Rscript and stopifnot-style checks,
# no test package needed. Run by `make test-r` from the repository root, which builds r/.venv and
# sets RETICULATE_PYTHON to it; or, from the root:
#   RETICULATE_PYTHON=$PWD/r/.venv/bin/python Rscript r/tests/test_gradfit.R
#
# The Python numbers come from r/tests/reference.csv, written by r/tests/reference.py with gradfit
# in Python (the main .venv, NumPy 2). Tolerances, relative to the reference value:
#  * CLOSED = 1e-8 for float64 results (closed form, the estimator's gd). gradfit's closed form is
#    a QR with refinement on a problem whose design has condition number ~1e3 (checked below), so
#    two correct float64 computations agree to ~1e-13 whatever the BLAS or NumPy version; 1e-8
#    leaves five orders of margin and still catches float32 slipping in (~1e-6..1e-5 here), a
#    transposed or reordered matrix, or a lost intercept.
#  * TUTORIAL = 1e-5 for the tutorial's float32 paths (as the seed's np$array(dtype = 'float32')).
#    float32 resolves 6e-8; another CPU or BLAS may round differently (R's reference BLAS instead
#    of torch's MKL moves the final scratch loss by 3e-7), and the 100 epochs at lr = 1e-5, below
#    the stable 2/L ~ 1.1e-4, do not amplify rounding. 1e-5 is 30 times that and far below what a
#    wrong path changes: one epoch more or less moves the scratch loss by ~1%, float64 data move
#    the built-ins loss by 3%.

started <- proc.time()[["elapsed"]]
root <- if (file.exists("r/gradfit.R")) "." else normalizePath(file.path(dirname(sub(
  "^--file=", "", grep("^--file=", commandArgs(), value = TRUE)
)), "../.."))
if (!nzchar(Sys.getenv("RETICULATE_PYTHON"))) {
  Sys.setenv(RETICULATE_PYTHON = file.path(normalizePath(root), "r/.venv/bin/python"))
}
source(file.path(root, "r/gradfit.R"))

gradfit <- reticulate::import("gradfit")
torch <- reticulate::import("torch")
np <- reticulate::import("numpy", convert = FALSE)
validation <- reticulate::import("gradfit.validation")

CLOSED <- 1e-8
TUTORIAL <- 1e-5

reference <- local({
  table <- read.csv(file.path(root, "r/tests/reference.csv"), colClasses = c("character", "numeric"))
  stats::setNames(table$value, table$name)
})
ref <- function(name) {
  if (!name %in% names(reference)) stop("no reference value ", name)
  reference[[name]]
}

# ---------------------------------------------------------------------------------------------
# a small harness: each test is a block of checks; failures are collected and reported at the end

n_tests <- 0L
n_checks <- 0L
failures <- character()

test <- function(name, code) {
  n_tests <<- n_tests + 1L
  result <- tryCatch({
    force(code)
    NULL
  }, error = function(e) conditionMessage(e))
  if (!is.null(result)) {
    failures <<- c(failures, sprintf("FAIL %s\n     %s", name, gsub("\n", "\n     ", result)))
  }
}

check <- function(ok, what) {
  n_checks <<- n_checks + 1L
  if (!isTRUE(ok)) stop(what, call. = FALSE)
}

check_close <- function(actual, expected, rel, what) {
  n_checks <<- n_checks + 1L
  actual <- as.numeric(actual)
  expected <- as.numeric(expected)
  if (length(actual) != length(expected) || anyNA(actual)) {
    stop(sprintf("%s: got %s, expected %s", what, paste(actual, collapse = " "),
                 paste(expected, collapse = " ")), call. = FALSE)
  }
  err <- max(abs(actual - expected) / pmax(abs(expected), 1e-300))
  if (!(err <= rel)) {
    stop(sprintf("%s: relative error %.3g above %.0e (got %s, expected %s)", what, err, rel,
                 paste(format(actual, digits = 17), collapse = " "),
                 paste(format(expected, digits = 17), collapse = " ")), call. = FALSE)
  }
}

check_error <- function(expr, pattern, what, fixed = TRUE) {
  n_checks <<- n_checks + 1L
  err <- tryCatch({
    force(expr)
    NULL
  }, error = identity)
  if (is.null(err)) stop(what, ": no error", call. = FALSE)
  if (!inherits(err, "gradfit_error")) {
    stop(what, ": an error of class ", paste(class(err), collapse = "/"),
         " rather than gradfit_error: ", conditionMessage(err), call. = FALSE)
  }
  for (p in pattern) {
    if (!grepl(p, conditionMessage(err), fixed = fixed)) {
      stop(sprintf("%s: message lacks '%s': %s", what, p, conditionMessage(err)), call. = FALSE)
    }
  }
  invisible(err)
}

features <- c("temp", "rainfall", "humidity")
targets <- c("apples", "oranges")
regions <- matrix(c(73, 67, 43, 91, 88, 64, 87, 134, 58, 102, 43, 37, 69, 96, 70),
                  ncol = 3, byrow = TRUE, dimnames = list(NULL, features))
yields <- matrix(c(56, 70, 81, 101, 119, 133, 22, 37, 103, 119),
                 ncol = 2, byrow = TRUE, dimnames = list(NULL, targets))
inputs <- regions[rep(1:5, 3), ]
yields15 <- yields[rep(1:5, 3), ]
new_region <- c(temp = 75, rainfall = 63, humidity = 44)
py_shape <- function(obj) unlist(reticulate::import_builtins()$list(obj$shape))

# ---------------------------------------------------------------------------------------------

test("R matrix -> NumPy: float64, shape (n, d), element [i, j] at [i-1][j-1], C order, a copy", {
  m <- matrix(as.double(1:12), nrow = 4, dimnames = list(paste0("r", 1:4), c("a", "b", "c")))
  a <- gf_matrix(m)
  check(identical(py_shape(a), c(4L, 3L)), "shape (4, 3)")
  check(reticulate::py_to_r(a$dtype$name) == "float64", "dtype float64")
  check(reticulate::py_to_r(a$flags$c_contiguous), "C-contiguous")
  check(reticulate::py_to_r(a$flags$writeable), "a writeable copy, not a view of R's memory")
  for (i in 1:4) for (j in 1:3) {
    check(reticulate::py_to_r(a$item(i - 1L, j - 1L)) == m[i, j], sprintf("element [%d, %d]", i, j))
  }
  check(identical(unlist(reticulate::py_to_r(a$tolist())[[2]]), unname(m[2, ])), "second row as in R")
  a$fill(0)
  check(m[1, 1] == 1, "R's matrix untouched when the array changes")
  check(identical(gf_to_r(gf_matrix(m)), m), "round trip keeps values and dimnames")
  one_row <- gf_matrix(rbind(new_region))
  check(identical(py_shape(one_row), c(1L, 3L)), "one row: (1, 3)")
  check(identical(py_shape(gf_matrix(m[, 1, drop = FALSE])), c(4L, 1L)), "one column: (4, 1)")
  check(identical(py_shape(gf_matrix(c(1, 2, 3))), c(3L, 1L)), "a vector is one column")
  check(identical(gf_to_r(one_row), rbind(new_region)), "named vector row round trip")
})

test("tensors: float64 by default, float32 on request; back to R with the same layout", {
  t64 <- gf_tensor(inputs)
  check(reticulate::py_str(t64$dtype) == "torch.float64", "float64 by default")
  check(identical(py_shape(t64), c(15L, 3L)), "shape (15, 3)")
  t32 <- gf_tensor(inputs, dtype = "float32")
  check(reticulate::py_str(t32$dtype) == "torch.float32", "float32 on request")
  check(identical(gf_to_r(t64), inputs), "float64 round trip, names kept")
  check(identical(gf_to_r(t32), inputs), "float32 round trip (integers are exact)")
  crops <- gradfit$load_crops()
  check(torch$equal(t32, crops$data), "the R matrix is gradfit's own crops data, element for element")
  check(torch$equal(gf_tensor(yields15, "float32"), crops$target), "and the targets")
  made_in_python <- torch$arange(6L)$reshape(2L, 3L)      # [[0, 1, 2], [3, 4, 5]]
  check(identical(gf_to_r(made_in_python), rbind(c(0, 1, 2), c(3, 4, 5))), "Python's rows are R's rows")
  check(identical(gf_to_r(torch$tensor(c(1.5, 2.5)), names = targets), c(apples = 1.5, oranges = 2.5)),
        "1-D tensor -> named vector")
  grad <- torch$ones(2L, 3L, requires_grad = TRUE)
  check(identical(dim(gf_to_r(grad)), c(2L, 3L)), "a tensor that requires grad converts")
  check(identical(gf_to_r(torch$tensor(2.5)), 2.5), "0-d tensor -> number")
  check_error(gf_to_r(made_in_python, colnames = c("a", "b")), "2 column names for 3 columns",
              "wrong number of names")
})

test("integer and logical columns are accepted, as doubles with the same values", {
  mi <- matrix(1:6, 3, 2, dimnames = list(NULL, c("a", "b")))
  a <- gf_matrix(mi)
  check(reticulate::py_to_r(a$dtype$name) == "float64", "an integer matrix becomes float64")
  check(identical(gf_to_r(a), matrix(as.double(1:6), 3, 2, dimnames = list(NULL, c("a", "b")))),
        "same values")
  # Handed to gradfit directly, reticulate makes it int32 and gradfit trains in float32:
  direct <- reticulate::py_str(validation$as_matrix(mi)$dtype)
  check(direct == "torch.float32", "(plain reticulate: int32 -> float32; gf_matrix avoids that)")
  check(reticulate::py_str(gf_tensor(mi)$dtype) == "torch.float64", "gf_tensor: float64")
  int_inputs <- inputs
  storage.mode(int_inputs) <- "integer"
  frame <- data.frame(int_inputs)
  check(all(vapply(frame, is.integer, logical(1))), "(the data.frame has integer columns)")
  fit_int <- gradfit$least_squares(gf_frame(frame), gf_matrix(yields15))
  fit_dbl <- gradfit$least_squares(gf_matrix(inputs), gf_matrix(yields15))
  check(torch$equal(fit_int$weight, fit_dbl$weight), "integer columns fit exactly as doubles")
  check(identical(gf_to_r(gf_matrix(matrix(c(TRUE, FALSE), 1))), matrix(c(1, 0), 1)), "logicals")
})

test("NA, NaN and Inf are refused with gradfit's own message", {
  m <- inputs
  m[3, 2] <- NA
  err <- check_error(gf_matrix(m), c(
    "gradfit: X contains NaN (first non-finite value at row 2, column 1); remove or impute",
    "[in R: X[3, 2] (column 'rainfall') is NA"
  ), "NA in a double matrix")
  check(identical(err$type, "ValidationError"), "the Python exception's class is kept")
  # word for word what gradfit says in Python about the same data
  python_says <- tryCatch(validation$as_matrix(np$array(m, dtype = "float64")),
                          error = function(e) .gf_py_error(e)$message)
  check(startsWith(conditionMessage(err), paste0("gradfit: ", python_says)),
        "the message is gradfit's own")
  mi <- matrix(1:6, 3, 2)
  mi[2, 1] <- NA
  # plain reticulate would hand Python -2147483648 here, silently:
  check(reticulate::py_str(reticulate::r_to_py(mi)$min()) == "-2147483648", "(reticulate: NA_integer_)")
  check_error(gf_matrix(mi), c("contains NaN (first non-finite value at row 1, column 0)",
                               "[in R: X[2, 1] is NA, which is NaN in Python"), "NA in an integer matrix")
  frame <- data.frame(temp = c(73L, NA, 87L), rainfall = c(67, 88, 134))
  check_error(gf_frame(frame), "X contains NaN (first non-finite value at row 1, column 0)",
              "NA in an integer data.frame column")
  check_error(gf_matrix(frame, name = "inputs"), c("inputs contains NaN", "inputs[2, 1] (column 'temp')"),
              "the name given is the name in the message")
  m <- inputs
  m[1, 3] <- NaN
  check_error(gf_tensor(m), c("contains NaN", "X[1, 3] (column 'humidity') is NaN"), "NaN")
  m[1, 3] <- Inf
  check_error(gf_matrix(m), c("X contains inf (first non-finite value at row 0, column 2)",
                              "is Inf"), "Inf")
  check_error(gf_vector(c(1, NA, 3)), c("y contains NaN", "[in R: y[2] is NA"), "NA in a vector")
  frame <- data.frame(temp = 1:2, region = c("a", "b"), kind = factor(c("x", "y")))
  check_error(gf_frame(frame), "columns 'region', 'kind' are not numeric (character, factor)",
              "text columns are named")
  check_error(gf_matrix(matrix("a")), "must be a numeric matrix, data.frame or vector", "text")
  check_error(gf_frame(unname(inputs)), "has no column names", "gf_frame needs names")
})

test("data.frame -> pandas DataFrame: names, row names and float64 kept", {
  frame <- data.frame(a = 1:3, b = c(2.5, 3, 4), row.names = c("x", "y", "z"))
  df <- gf_frame(frame)
  check(identical(unlist(reticulate::py_to_r(df$columns$tolist())), c("a", "b")), "column names")
  check(identical(unlist(reticulate::py_to_r(df$index$tolist())), c("x", "y", "z")), "row names")
  check(all(reticulate::py_to_r(df$dtypes$astype("str")$tolist()) == "float64"), "float64 columns")
  expected <- matrix(c(1, 2, 3, 2.5, 3, 4), 3, dimnames = list(c("x", "y", "z"), c("a", "b")))
  check(identical(gf_to_r(df), expected), "back to R with the names")
  plain <- gf_frame(data.frame(a = 1:2))
  check(is.null(rownames(gf_to_r(plain))), "automatic row names stay automatic")
})

test("closed form from R: the Python reference (1e-8) and R's own lm()", {
  exact <- gradfit$least_squares(gf_matrix(inputs), gf_matrix(yields15))
  prediction <- gf_to_r(gradfit$predict(gf_tensor(rbind(new_region)), exact$weight, exact$bias),
                        colnames = targets)
  check_close(prediction[1, ], c(ref("closed.predict.apples"), ref("closed.predict.oranges")),
              CLOSED, "closed-form prediction for c(75, 63, 44)")
  check_close(prediction[1, ], c(53.4228, 67.1162), 1e-5, "the tutorial's printed 53.4228, 67.1162")
  W <- gf_to_r(exact$weight, rownames = targets, colnames = features)
  for (t in targets) for (f in features) {
    check_close(W[t, f], ref(sprintf("closed.weight.%s.%s", t, f)), CLOSED, sprintf("weight %s %s", t, f))
  }
  check_close(gf_to_r(exact$bias), c(ref("closed.bias.apples"), ref("closed.bias.oranges")), CLOSED, "bias")
  check(kappa(cbind(1, inputs), exact = TRUE) < 2e3, "(the design is well conditioned: ~1e3)")
  lm_fit <- lm(yields15 ~ inputs)
  coef_r <- gf_coef(exact$weight, exact$bias, features, targets)
  check_close(coef_r, coef(lm_fit), CLOSED, "gradfit's closed form = R's lm()")
  check(identical(dimnames(coef_r), list(c("(Intercept)", features), targets)), "gf_coef layout")
  check_close(drop(predict(lm_fit, newdata = list(inputs = rbind(new_region)))),
              prediction, CLOSED, "lm()'s prediction")
})

tutorial <- new.env()
tutorial_output <- NULL
test("r/tutorial.R runs from R and reproduces the tutorial's numbers", {
  # Rscript r/tutorial.R, here in one environment (its output is kept for the next test).
  tutorial_output <<- utils::capture.output(
    sys.source(file.path(root, "r/tutorial.R"), envir = tutorial, chdir = FALSE)
  )
  T <- as.list(tutorial)
  check_close(T$initial_loss, ref("demo.initial_loss"), TUTORIAL, "part 1: loss with random weights")
  check_close(T$loss_after_one_step, ref("demo.loss_after_one_step"), TUTORIAL, "loss after one step")
  check_close(tail(unlist(T$part1$losses), 1), ref("demo.scratch_epoch100_loss"), TUTORIAL,
              "from scratch: loss at epoch 100")
  check_close(tail(unlist(T$part2$history$last_batch_loss), 1),
              ref("demo.builtin_epoch100_last_batch_loss"), TUTORIAL,
              "built-ins: last batch loss at epoch 100")
  s <- T$summary_table
  rows <- c("from scratch" = "scratch", "built-ins" = "builtin", "closed form" = "closed")
  check(identical(s$path, names(rows)), "summary rows")
  for (i in seq_along(rows)) {
    key <- rows[[i]]
    rel <- if (key == "closed") CLOSED else TUTORIAL
    check_close(s$loss[i], ref(sprintf("demo.%s.loss", key)), rel, paste(names(rows)[i], "loss"))
    check_close(c(s$apples[i], s$oranges[i]),
                c(ref(sprintf("demo.%s.predict.apples", key)), ref(sprintf("demo.%s.predict.oranges", key))),
                rel, paste(names(rows)[i], "prediction for c(75, 63, 44)"))
  }
  check_close(s$vs_optimum, s$loss / ref("demo.optimum_loss"), CLOSED, "ratios to the optimum")
  check_close(s$loss, c(1258.0215, 33.1456, 0.4831), 1e-4, "the tutorial's printed losses")
  check_close(T$closed_prediction, c(ref("closed.predict.apples"), ref("closed.predict.oranges")),
              CLOSED, "gradfit.predict from R")
  check(identical(colnames(T$closed_prediction), targets), "prediction columns named")
  check(max(abs(T$closed_coef - T$lm_coef)) < 1e-10, "closed form = lm() in the tutorial")
  # the estimator on the data.frame
  check(identical(as.character(T$est$feature_names_in_), features), "estimator learned the names")
  check(T$est$n_iter_ == ref("estimator.n_iter"), "estimator: epochs as in Python")
  for (t in targets) {
    check_close(T$estimator_coef[features, t],
                vapply(features, function(f) ref(sprintf("estimator.coef.%s.%s", t, f)), 0),
                CLOSED, paste("estimator coef_", t))
    check_close(T$estimator_coef["(Intercept)", t], ref(sprintf("estimator.intercept.%s", t)),
                CLOSED, paste("estimator intercept_", t))
  }
  check_close(T$estimator_prediction,
              c(ref("estimator.predict.apples"), ref("estimator.predict.oranges")), CLOSED,
              "estimator prediction for c(75, 63, 44)")
  # the CSV file: gradfit's reader, and read.csv() with integer columns
  check(identical(T$csv_x, regions), "CSV read by gradfit = the R matrix (names, no text column)")
  check(identical(T$csv_y, yields), "CSV targets")
  check_close(gf_coef(T$csv_fit$weight, T$csv_fit$bias), T$closed_coef, CLOSED, "CSV closed form")
  check_close(T$csv_prediction, c(ref("closed.predict.apples"), ref("closed.predict.oranges")),
              CLOSED, "read.csv + estimator(lstsq) prediction")
  check_close(T$report$optimal_loss, ref("demo.optimum_loss"), CLOSED, "fit_data: the optimum")
})

test("the tutorial prints what `gradfit demo` prints", {
  # The printed figures, read back and compared with Python's (float32 sums may differ in the
  # last printed digit from one CPU to another, so the numbers are compared, not the text).
  printed <- function(pattern, what) {
    hits <- regmatches(tutorial_output, regexec(pattern, tutorial_output))
    hits <- Filter(length, hits)
    check(length(hits) > 0, paste("prints", what))
    t(vapply(hits, function(h) as.numeric(h[-1]), numeric(length(hits[[1]]) - 1)))
  }
  num <- "([-+]?[0-9]+[.][0-9]+)"
  check(any(grepl("Epoch [10/100], Loss: ", tutorial_output, fixed = TRUE)), "prints epoch 10")
  epoch100 <- printed(paste0("^Epoch \\[100/100\\], Loss: ", num, "$"), "epoch 100")
  check(length(epoch100) == 2, "epoch 100 of both parts")
  check_close(epoch100[1], ref("demo.scratch_epoch100_loss"), TUTORIAL, "part 1, epoch 100 loss")
  check_close(epoch100[2], ref("demo.builtin_epoch100_last_batch_loss"), TUTORIAL,
              "part 2, epoch 100 loss")
  step <- printed(paste0("loss after one step: ", num, " [(]was ", num, "[)]"), "one step")
  check_close(step[1, ], c(ref("demo.loss_after_one_step"), ref("demo.initial_loss")), TUTORIAL,
              "loss after one step, and before")
  rows <- list(`from scratch` = "scratch", `built-ins` = "builtin", `closed form` = "closed")
  for (label in names(rows)) {
    key <- rows[[label]]
    got <- printed(paste0("^ *", label, " +", num, " +", num, " +", num, " +", num, " *$"), label)
    check_close(got[1, c(1, 3, 4)], c(ref(sprintf("demo.%s.loss", key)),
                                      ref(sprintf("demo.%s.predict.apples", key)),
                                      ref(sprintf("demo.%s.predict.oranges", key))),
                5e-4, paste("summary row", label))  # printed to 4 decimals (2 for predictions)
  }
})

test("CSV errors reach R with gradfit's message: file, column and row", {
  path <- tempfile(fileext = ".csv")
  on.exit(unlink(path))
  writeLines(c("temp,rainfall,apples", "73,67,56", "91,abc,81", "87,134,119"), path)
  table <- gf_try(gradfit$data$read_table(path))
  err <- check_error(gf_try(gradfit$data$select(table, "apples")),
                     c("gradfit DataError: ", basename(path), "column 'rainfall', row 2: 'abc' is not a number"),
                     "a bad cell")
  check(identical(err$type, "DataError"), "DataError")
  check_error(gf_try(gradfit$data$read_table(paste0(path, ".missing"))), "gradfit DataError", "no file")
  check_error(gf_try(gradfit$GradientDescentRegressor(learning_rate = 1e-3, standardize = FALSE)$fit(
    gf_matrix(inputs), gf_matrix(yields15))), c("gradfit DivergenceError: training diverged",
                                                "the largest stable learning rate"), "divergence")
})

test("torch in this R session keeps its own BLAS (not R's, ~50x slower)", {
  check(isTRUE(.gf$torch_preloaded) || Sys.info()[["sysname"]] != "Linux",
        "libtorch_cpu was loaded before torch (r/gradfit.R sourced first)")
  best <- reticulate::py_run_string(local = TRUE, convert = TRUE, "
import time, torch
a, b = torch.ones(1000, 1000), torch.ones(1000, 1000)
best = float('inf')
for _ in range(4):
    start = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - start)
")$best
  gflops <- 2 * 1000^3 / best / 1e9
  check(gflops > 10, sprintf(
    "a float32 1000x1000 product ran at %.1f GFLOP/s: torch is using R's reference BLAS", gflops))
})

test("an R integer NA handed straight to gradfit is refused, naming NA_integer_ and gf_matrix()", {
  # airquality: Ozone, Solar.R and Temp are integer columns with NA; reticulate hands the integer
  # matrix to Python as int32, each NA as -2147483648 (R's NA_integer_).
  X <- as.matrix(airquality[, c("Ozone", "Solar.R", "Temp")])
  check(is.integer(X) && anyNA(X), "(an integer matrix with NA)")
  err <- check_error(gf_try(gradfit$ols(X, airquality$Wind)),
                     c("gradfit ValidationError: X holds -2147483648 at row 4, column 0",
                       "NA_integer_", "gf_matrix()"), "the NA is refused, not fitted")
  check(identical(err$type, "ValidationError"), "a ValidationError")
  check_error(gf_try(gradfit$least_squares(X, airquality$Wind)), "NA_integer_", "least_squares too")
  # What to do instead: gf_matrix() turns NA into NaN and says where; R's na.omit() drops them.
  check_error(gf_matrix(X), "[in R: X[5, 1] (column 'Ozone') is NA", "gf_matrix names the NA")
  complete <- na.omit(airquality[, c("Ozone", "Solar.R", "Temp", "Wind")])
  fit <- gradfit$ols(gf_matrix(complete[, 1:3]), gf_vector(complete$Wind))
  check(fit$n == 111L, "111 complete rows, as lm() uses")
  lm_fit <- lm(Wind ~ Ozone + Solar.R + Temp, data = airquality)
  check_close(gf_coef(fit$weight, fit$bias), coef(lm_fit), CLOSED, "the coefficients of lm()")
})

collinear <- local({
  x1 <- c(8.45, 1.61, 5.58, 3.68, 2.15, 3.86, 4.28, 6.11, 7.36, 0.15,
          2.54, 6.04, 0.84, 9.98, 8.32, 0.37, 5.68, 6.09, 0.07, 1.79)
  x3 <- c(-3.35, -0.38, 0.67, -0.48, 4.2, 3.15, -0.99, -2.97, -1.42, 3.62,
          -1.51, 4.91, 0.66, -2.63, 1.59, 1.6, 0.15, -2.21, 1.3, -0.21)
  y <- c(22.813, 6.568, 7.595, 9.37, -2.012, 3.051, 10.584, 16.777, 15.929, -3.467,
         8.978, 1.476, 4.084, 22.444, 11.401, 0.264, 11.419, 17.593, -0.374, 4.537)
  data.frame(x1 = x1, x2 = 2 * x1, x3 = x3, y = y)
})

test("a rank-deficient fit follows lm(): x2 aliased (NA, weight 0), same predictions", {
  X <- as.matrix(collinear[, c("x1", "x2", "x3")])
  fit <- suppressWarnings(gf_try(gradfit$ols(gf_matrix(X), gf_vector(collinear$y),
                                             feature_names = colnames(X), target_names = "y")))
  lm_fit <- lm(y ~ x1 + x2 + x3, data = collinear)
  check(is.na(coef(lm_fit)[["x2"]]), "(lm: x2 is NA)")
  check(identical(gf_to_r(fit$aliased), c(0, 1, 0)), "x2 aliased, as lm()") # bool -> double
  coefs <- gf_coef(fit$weight, fit$bias, colnames(X), "y")
  check(coefs["x2", "y"] == 0, "the aliased weight is 0")
  keep <- c("(Intercept)", "x1", "x3")
  check_close(coefs[keep, "y"], coef(lm_fit)[keep], CLOSED, "the others are lm()'s")
  check_close(gf_to_r(fit$weight_se)[c(1, 3)], summary(lm_fit)$coefficients[c("x1", "x3"), 2],
              CLOSED, "standard errors")
  new <- data.frame(x1 = c(4, 4), x2 = c(8, 5), x3 = c(1, 1)) # the second row breaks x2 = 2 x1
  r_pred <- suppressWarnings(predict(lm_fit, new, interval = "prediction"))
  ours <- suppressWarnings(gf_try(fit$predict(gf_matrix(new), interval = "prediction")))
  got <- cbind(gf_to_r(ours$mean), gf_to_r(ours$lower), gf_to_r(ours$upper))
  check_close(got, unname(r_pred), CLOSED, "prediction intervals of predict.lm")
})

test("Python warnings reach R's warning(): suppressWarnings, tryCatch, withCallingHandlers", {
  X <- gf_matrix(as.matrix(collinear[, c("x1", "x2", "x3")]))
  y <- gf_vector(collinear$y)
  w <- tryCatch(gf_try(gradfit$ols(X, y)), warning = identity)
  check(inherits(w, "gradfit_warning") && inherits(w, "warning"), "a gradfit_warning condition")
  check(identical(w$type, "RankDeficiencyWarning"), "its type is the Python category")
  check(grepl("gradfit RankDeficiencyWarning: X is rank deficient", conditionMessage(w), fixed = TRUE),
        paste("Python's message:", conditionMessage(w)))
  seen <- character()
  fit <- withCallingHandlers(gf_try(gradfit$ols(X, y)), warning = function(w) {
    seen <<- c(seen, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  check(length(seen) == 1L, "one warning for the fit")
  check(fit$df_resid == 17L, "and the value is returned")
  quiet <- tryCatch(suppressWarnings(gf_try(gradfit$ols(X, y))), warning = function(w) "leaked")
  check(!identical(quiet, "leaked"), "suppressWarnings() silences it")
  new <- gf_matrix(rbind(c(4, 8, 1), c(4, 5, 1)))
  w <- tryCatch(gf_try(fit$predict(new)), warning = identity)
  check(inherits(w, "gradfit_warning") && grepl("rank-deficient fit may be misleading",
                                                 conditionMessage(w), fixed = TRUE),
        "predict warns as predict.lm does for a row that breaks the collinearity")
  on_span <- gf_matrix(rbind(c(4, 8, 1)))
  silent <- withCallingHandlers(gf_try(fit$predict(on_span)), warning = function(w) {
    stop("unexpected warning: ", conditionMessage(w))
  })
  check(length(gf_to_r(silent)) == 1L, "no warning for a row on the training span")
  err <- tryCatch(gf_try(gradfit$ols(X, gf_vector(collinear$y[1:3]))), error = identity)
  check(inherits(err, "gradfit_error"), "errors still become gradfit_error")
})

test("one name may be a single string (target_names = \"mpg\")", {
  fit <- gf_try(gradfit$ols(gf_matrix(mtcars[, "wt", drop = FALSE]), gf_vector(mtcars$mpg),
                            feature_names = "wt", target_names = "mpg"))
  check(identical(unlist(fit$target_names), "mpg") && identical(unlist(fit$feature_names), "wt"),
        "names kept")
  check_close(gf_coef(fit$weight, fit$bias)[, 1], coef(lm(mpg ~ wt, data = mtcars)), CLOSED,
              "lm(mpg ~ wt)")
})

# ---------------------------------------------------------------------------------------------
# formulas, factors, missing values and weights (issue 19): gradfit against R's own lm(), live

# Everything summary(lm) shows, from gradfit's OLSResult$as_dict(), for one target, against the
# lm fit: names, estimates, standard errors, t and sigma, R², adjusted R², F to CLOSED (the same
# closed form twice in float64); p-values to 1e-6 (the issue's tolerance: they pass through the
# t and F distributions, computed by SciPy in Python and by R's pt/pf here).
check_like_lm <- function(fit, lm_fit, what) {
  d <- fit$as_dict()
  t <- d$targets[[1]]
  s <- summary(lm_fit)
  co <- s$coefficients
  names_py <- names(t$coefficients)
  # gradfit lists the features, then "(Intercept)"; R the intercept first.
  order_r <- rownames(co)
  check(setequal(names_py, order_r), sprintf("%s: the coefficients are R's (%s vs %s)", what,
        paste(names_py, collapse = ", "), paste(order_r, collapse = ", ")))
  field <- function(f) vapply(order_r, function(n) t$coefficients[[n]][[f]], numeric(1))
  check_close(field("estimate"), co[, "Estimate"], CLOSED, paste(what, "estimates"))
  check_close(field("std_error"), co[, "Std. Error"], CLOSED, paste(what, "standard errors"))
  check_close(field("t"), co[, "t value"], CLOSED, paste(what, "t values"))
  check_close(field("p"), co[, "Pr(>|t|)"], 1e-6, paste(what, "p-values"))
  check_close(t$sigma, s$sigma, CLOSED, paste(what, "sigma"))
  check_close(t$r2, s$r.squared, CLOSED, paste(what, "R squared"))
  check_close(t$r2_adj, s$adj.r.squared, CLOSED, paste(what, "adjusted R squared"))
  check_close(t$f_statistic, s$fstatistic[["value"]], CLOSED, paste(what, "F"))
  check(d$df_resid == lm_fit$df.residual, paste(what, "residual degrees of freedom"))
  invisible(d)
}

test("a formula with factors and an interaction on a data.frame: lm(breaks ~ wool * tension)", {
  # reticulate hands the data.frame to Python as a pandas DataFrame, its factors as pandas
  # Categoricals with R's levels in R's order (tension: L, M, H), which gradfit keeps.
  fit <- gf_try(gradfit$ols("breaks ~ wool * tension", data = warpbreaks))
  lm_fit <- lm(breaks ~ wool * tension, data = warpbreaks)
  check_like_lm(fit, lm_fit, "warpbreaks")
  check(identical(unlist(fit$feature_names), c("woolB", "tensionM", "tensionH",
                                               "woolB:tensionM", "woolB:tensionH")),
        "coefficients named as R names them")
})

test("y ~ . with missing values dropped: lm(Ozone ~ ., airquality) and its 42 deleted rows", {
  # reticulate hands an integer column's NA over as -2147483648 (int32): gradfit refuses it,
  # naming column and row; as doubles, NA arrives as NaN, a missing value.
  check_error(gf_try(gradfit$ols("Ozone ~ .", data = airquality, missing = "drop")),
              c("column 'Ozone' holds -2147483648 at row 5", "NA_integer_", "as.double()"),
              "an integer NA is refused, not fitted as -2.1e9")
  aq <- data.frame(lapply(airquality, as.double))
  fit <- gf_try(gradfit$ols("Ozone ~ .", data = aq, missing = "drop"))
  lm_fit <- lm(Ozone ~ ., data = airquality)
  check_like_lm(fit, lm_fit, "airquality")
  check(fit$n_dropped == length(lm_fit$na.action), "42 rows dropped, as na.omit drops")
  check(grepl("(42 observations deleted due to missingness)", fit$summary(), fixed = TRUE),
        "the summary says so, in R's words")
  check_error(gf_try(gradfit$ols("Ozone ~ .", data = aq)), "missing",
              "without missing = \"drop\" a missing value is refused, saying what to do")
})

test("a factor made in R and a numeric interaction: lm(mpg ~ wt + hp + cyl + wt:hp)", {
  cars <- transform(mtcars, cyl = factor(cyl))
  fit <- gf_try(gradfit$ols("mpg ~ wt + hp + cyl + wt:hp", data = cars))
  check_like_lm(fit, lm(mpg ~ wt + hp + cyl + wt:hp, data = cars), "mtcars")
})

test("no intercept: every level of the factor, as lm(Sepal.Length ~ 0 + Species + Petal.Length)", {
  fit <- gf_try(gradfit$ols("Sepal.Length ~ 0 + Species + Petal.Length", data = iris))
  lm_fit <- lm(Sepal.Length ~ 0 + Species + Petal.Length, data = iris)
  check(!fit$fit_intercept, "no intercept")
  field <- function(f) vapply(names(coef(lm_fit)), function(n) {
    fit$as_dict()$targets[[1]]$coefficients[[n]][[f]]
  }, numeric(1))
  check_close(field("estimate"), coef(lm_fit), CLOSED, "iris estimates")
  check_close(field("std_error"), summary(lm_fit)$coefficients[, 2], CLOSED, "iris SEs")
})

test("weighted least squares: lm(mpg ~ wt + hp, mtcars, weights = cyl)", {
  X <- gf_matrix(mtcars[, c("wt", "hp")])
  fit <- gf_try(gradfit$ols(X, gf_vector(mtcars$mpg), weights = gf_vector(mtcars$cyl, "w"),
                            feature_names = c("wt", "hp"), target_names = "mpg"))
  lm_fit <- lm(mpg ~ wt + hp, data = mtcars, weights = cyl)
  check_like_lm(fit, lm_fit, "weighted mtcars")
  check_close(fit$as_dict()$targets[[1]]$log_likelihood, as.numeric(logLik(lm_fit)), CLOSED,
              "logLik of a weighted fit, R's definition")
  check_close(fit$as_dict()$targets[[1]]$aic, AIC(lm_fit), CLOSED, "AIC")
})

# Sourcing r/gradfit.R with a NumPy 2 Python fails and says which Python to use.
check_numpy2_refused <- function(main_python) {
  out <- suppressWarnings(system2(
    file.path(R.home("bin"), "Rscript"),
    c("-e", shQuote(sprintf("source('%s')", file.path(normalizePath(root), "r/gradfit.R")))),
    stdout = TRUE, stderr = TRUE, env = sprintf("RETICULATE_PYTHON=%s", main_python)
  ))
  status <- attr(out, "status")
  text <- paste(out, collapse = " ")
  check(!is.null(status) && status != 0, paste("sourcing fails:", text))
  check(grepl("cannot exchange arrays with NumPy 2", text, fixed = TRUE), paste("says why:", text))
  check(grepl("RETICULATE_PYTHON = \"r/.venv/bin/python\"", text, fixed = TRUE),
        paste("says what to do:", text))
}

test("a Python with NumPy 2 is refused with a message saying which Python to use", {
  # Nothing to check with a newer reticulate, or without the main .venv here (a fresh clone
  # running `make test-r` alone). No return() here: test() evaluates this block as a promise at
  # top level, where return() fails ("no function to return from").
  main_python <- file.path(normalizePath(root), ".venv/bin/python")
  if (utils::packageVersion("reticulate") < "1.38" && file.exists(main_python)) {
    check_numpy2_refused(main_python)
  }
})

# ---------------------------------------------------------------------------------------------

seconds <- proc.time()[["elapsed"]] - started
config <- reticulate::py_config()
versions <- reticulate::py_run_string(local = TRUE, convert = TRUE, "
import numpy, platform, torch
numpy_version, torch_version, python_version = numpy.__version__, str(torch.__version__), platform.python_version()
")
cat(sprintf("test-r: R %s.%s, reticulate %s; Python %s (%s): NumPy %s, torch %s\n",
            R.version$major, R.version$minor, utils::packageVersion("reticulate"),
            versions$python_version, config$python, versions$numpy_version, versions$torch_version))
if (length(failures)) {
  cat(failures, sep = "\n")
  cat(sprintf("test-r: %d of %d tests FAILED (%d checks passed, %.1f s)\n",
              length(failures), n_tests, n_checks - length(failures), seconds))
  quit(status = 1)
}
cat(sprintf("test-r: %d tests, %d checks passed in %.1f s\n", n_tests, n_checks, seconds))
