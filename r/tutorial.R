# Linear regression and gradient descent from scratch in PyTorch -- from R, with gradfit.
#
# The tutorial gradfit grew from was told in R (rTorch); this is the same tutorial told from R
# through reticulate, with gradfit doing the work: the crop data as an R matrix and as a
# data.frame, part 1 from scratch, part 2 with PyTorch's built-ins, the closed form, and the
# predictions for a new region, c(temp = 75, rainfall = 63, humidity = 44); then gradfit's
# scikit-learn estimator on a data.frame and a CSV file read and fitted from R.
#
# Run it from the repository root, after `make test-r` has built r/.venv (the Python it uses):
#   Rscript r/tutorial.R
# The numbers are those of `gradfit demo` (r/tests checks that they are).

r_dir <- if (file.exists("r/gradfit.R")) "r" else "."
if (!nzchar(Sys.getenv("RETICULATE_PYTHON")) && file.exists(file.path(r_dir, ".venv/bin/python"))) {
  # (the directory made absolute, not the python link itself: resolving it would leave the venv)
  Sys.setenv(RETICULATE_PYTHON = file.path(normalizePath(r_dir), ".venv/bin/python"))
}
source(file.path(r_dir, "gradfit.R"))
gradfit <- reticulate::import("gradfit")
tutorial <- reticulate::import("gradfit.tutorial")
torch <- reticulate::import("torch")

# ---------------------------------------------------------------------------------------------
# The data: yields of apples and oranges from temperature, rainfall and humidity, five regions.
# The seed repeats them three times (15 rows, batches of 5 in part 2).

features <- c("temp", "rainfall", "humidity")
targets <- c("apples", "oranges")
regions <- matrix(c(
   73,  67, 43,
   91,  88, 64,
   87, 134, 58,
  102,  43, 37,
   69,  96, 70
), ncol = 3, byrow = TRUE, dimnames = list(NULL, features))
yields <- matrix(c(
   56,  70,
   81, 101,
  119, 133,
   22,  37,
  103, 119
), ncol = 2, byrow = TRUE, dimnames = list(NULL, targets))

inputs <- regions[rep(1:5, times = 3), ]   # 15 x 3 R matrix, columns named
yields15 <- yields[rep(1:5, times = 3), ]  # 15 x 2
crops <- data.frame(inputs, yields15)      # the same, as a data.frame with names
new_region <- c(temp = 75, rainfall = 63, humidity = 44)

# The seed builds its tensors with np$array(..., dtype = 'float32'); gf_tensor() does the same
# from the R matrices (a float64 copy by default; float32 here, to get the tutorial's numbers).
x <- gf_tensor(inputs, dtype = "float32")
y <- gf_tensor(yields15, dtype = "float32")
cat("inputs: ", reticulate::py_str(x$shape), ", ", reticulate::py_str(x$dtype),
    "; targets: ", reticulate::py_str(y$shape), "\n", sep = "")

# ---------------------------------------------------------------------------------------------
# Part 1, from scratch: weights and biases drawn from N(0, 1) with requires_grad = TRUE,
# model(x) = x w' + b, the mean squared error, its gradients, one step of gradient descent.

cat("\nPart 1: linear regression and gradient descent from scratch\n")
generator <- torch$Generator()$manual_seed(0L)
params <- tutorial$init_params(3L, 2L, generator)
w <- params[[1]]
b <- params[[2]]
preds <- tutorial$model(x, w, b)         # x$mm(w$t()) + b
loss <- tutorial$mse(preds, y)           # sum(diff * diff) / numel
initial_loss <- loss$item()
cat(sprintf("loss with random weights: %.4f\n", initial_loss))
tutorial$compute_gradients(loss)         # loss$backward(): w$grad, b$grad
cat("gradient of the loss w.r.t. w:\n")
print(gf_to_r(w$grad, rownames = targets, colnames = features))
tutorial$step(w, b, lr = 1e-5)           # under no_grad: w <- w - lr * w$grad; grads zeroed
loss_after_one_step <- tutorial$mse(tutorial$model(x, w, b), y)$item()
cat(sprintf("loss after one step: %.4f (was %.4f)\n", loss_after_one_step, initial_loss))

every_10 <- function(epoch, epochs, loss, ...) {
  if (epoch %% 10 == 0) cat(sprintf("Epoch [%d/%d], Loss: %.4f\n", epoch, epochs, loss))
}
cat("training 100 epochs from there:\n")
part1 <- tutorial$train_from_scratch(
  x, y, epochs = 100L, lr = 1e-5, weight = w, bias = b, callback = every_10
)

# ---------------------------------------------------------------------------------------------
# Part 2, with PyTorch built-ins: TensorDataset, DataLoader(batch_size = 5, shuffle = TRUE),
# nn.Linear, F.mse_loss, optim.SGD and the tutorial's fit() utility.

cat("\nPart 2: the same model with PyTorch built-ins\n")
part2 <- tutorial$train_builtin(
  x, y, epochs = 100L, lr = 1e-5, batch_size = 5L, seed = 0L, callback = every_10
)

# ---------------------------------------------------------------------------------------------
# The closed form: the optimum both paths aim at (float64 QR with refinement), next to R's lm().

exact <- gradfit$least_squares(gf_matrix(inputs), gf_matrix(yields15))
closed_coef <- gf_coef(exact$weight, exact$bias, features, targets)
cat("\nClosed-form least squares (gradfit.least_squares), as coef(lm(...)) lays it out:\n")
print(closed_coef)
lm_coef <- coef(lm(cbind(apples, oranges) ~ temp + rainfall + humidity, data = crops))
cat(sprintf("largest difference to R's lm(): %.2g\n", max(abs(closed_coef - lm_coef))))

# ---------------------------------------------------------------------------------------------
# Summary: each path's weights back in R as matrices, its loss on the data, its ratio to the
# optimum and its prediction for the new region -- computed in R from the converted weights.

paths <- list(
  "from scratch" = list(weight = part1$weight, bias = part1$bias),
  "built-ins" = list(weight = part2$weight, bias = part2$bias),
  "closed form" = list(weight = exact$weight, bias = exact$bias)
)
mse_r <- function(W, b) mean((inputs %*% t(W) + rep(b, each = nrow(inputs)) - yields15)^2)
summary_rows <- lapply(names(paths), function(name) {
  W <- gf_to_r(paths[[name]]$weight, rownames = targets, colnames = features)  # 2 x 3 matrix
  b <- gf_to_r(paths[[name]]$bias, names = targets)                            # named vector
  prediction <- drop(W %*% new_region) + b
  data.frame(path = name, loss = mse_r(W, b), apples = prediction[["apples"]],
             oranges = prediction[["oranges"]])
})
summary_table <- do.call(rbind, summary_rows)
optimum <- summary_table$loss[summary_table$path == "closed form"]
summary_table$vs_optimum <- summary_table$loss / optimum
summary_table <- summary_table[, c("path", "loss", "vs_optimum", "apples", "oranges")]

cat("\nSummary: loss on the training data and prediction for temp = 75, rainfall = 63, humidity = 44\n")
print(format(summary_table, digits = 4, nsmall = 2), row.names = FALSE)

# The same prediction by gradfit itself, back as an R matrix with names:
closed_prediction <- gf_to_r(
  gradfit$predict(gf_tensor(rbind(new_region)), exact$weight, exact$bias),
  colnames = targets
)
cat("\ngradfit.predict for the new region (closed form):\n")
print(closed_prediction)

# ---------------------------------------------------------------------------------------------
# The scikit-learn estimator, fitted on the data.frame: gf_frame() hands it a pandas DataFrame,
# so it learns the feature names; predictions come back as an R matrix.

est <- gradfit$GradientDescentRegressor(random_state = 0L)$fit(
  gf_frame(crops[features]), gf_matrix(crops[targets])
)
estimator_coef <- gf_coef(est$coef_, est$intercept_, features = est$feature_names_in_, targets)
estimator_prediction <- gf_to_r(
  est$predict(gf_frame(as.data.frame(t(new_region)))), colnames = targets
)
cat(sprintf(
  "\nGradientDescentRegressor (gd, standardized): %d epochs, converged: %s, R^2 = %.6f\n",
  est$n_iter_, est$converged_, est$score(gf_frame(crops[features]), gf_matrix(crops[targets]))
))
print(estimator_coef)
cat("prediction for the new region:\n")
print(estimator_prediction)

# ---------------------------------------------------------------------------------------------
# A CSV file, read and fitted from R: gradfit's own reader (the one `gradfit fit` uses: its
# messages name the file, column and row), then the same file through R's read.csv().

csv_path <- tempfile("crops-", fileext = ".csv")
write.csv(data.frame(region = paste0("region", 1:5), regions, yields), csv_path, row.names = FALSE)

table <- gf_try(gradfit$data$read_table(csv_path))
selected <- gf_try(gradfit$data$select(table, as.list(targets)))  # X, Y, feature and target names
csv_x <- gf_to_r(selected[[1]], colnames = unlist(selected[[3]]))
csv_y <- gf_to_r(selected[[2]], colnames = unlist(selected[[4]]))
csv_fit <- gradfit$least_squares(gf_matrix(csv_x), gf_matrix(csv_y))
cat(sprintf("\n%s read by gradfit: %d rows, features %s (the text column 'region' left out)\n",
            basename(csv_path), nrow(csv_x), paste(colnames(csv_x), collapse = ", ")))
print(gf_coef(csv_fit$weight, csv_fit$bias, colnames(csv_x), colnames(csv_y)))

csv_frame <- read.csv(csv_path)                    # integer columns, and the text column
csv_est <- gradfit$GradientDescentRegressor(solver = "lstsq")$fit(
  gf_frame(csv_frame[features]), gf_matrix(csv_frame[targets])
)
csv_prediction <- gf_to_r(
  csv_est$predict(gf_frame(as.data.frame(t(new_region)))), colnames = targets
)
cat("the same file through read.csv(), fitted with solver = \"lstsq\"; prediction:\n")
print(csv_prediction)

# What `gradfit fit crops.csv --target apples,oranges` does, as one call:
report <- gradfit$fitting$fit_data(csv_path, as.list(targets))
cat(sprintf("fit_data(): final loss %.6f, optimum %.6f, R^2 %s\n", report$final_loss,
            report$optimal_loss, paste(sprintf("%.6f", unlist(report$metrics$r2)), collapse = ", ")))
unlink(csv_path)
