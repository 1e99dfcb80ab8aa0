# Writes R's data sets and the reference model matrices used by tests/test_design.py.
# Run from this folder: Rscript export.R   (R 4.2.2 here; the tests never need R).
# Data sets: CSV with a header, no row names (mtcars' row names become the column "model"),
# an empty cell for NA. Model matrices (mm-*.csv): model.matrix() of the formula on the data
# read back from that CSV (as gradfit reads it: text columns become factors whose levels are
# sorted), rows with NA left out (na.omit), a first column "row" with the 1-based data row,
# numbers written with %.17g (the float64 exactly).

full <- function(df) {
  for (i in seq_along(df)) if (is.numeric(df[[i]])) df[[i]] <- sprintf("%.17g", df[[i]])
  df
}
write_data <- function(df, name) {
  write.csv(df, paste0(name, ".csv"), row.names = FALSE, na = "", quote = TRUE)
}
read_data <- function(name) read.csv(paste0(name, ".csv"), stringsAsFactors = TRUE)
write_mm <- function(formula, data, name) {
  mf <- model.frame(formula, data, na.action = na.omit)
  mm <- model.matrix(formula, mf)
  out <- data.frame(row = as.integer(rownames(mm)), mm, check.names = FALSE)
  write.csv(full(out), paste0("mm-", name, ".csv"), row.names = FALSE, quote = TRUE)
}

write_data(warpbreaks, "warpbreaks")
write_data(data.frame(model = rownames(mtcars), mtcars), "mtcars")
write_data(airquality, "airquality")
write_data(iris, "iris")
write_data(ToothGrowth, "ToothGrowth")
write_data(PlantGrowth, "PlantGrowth")
write_data(npk, "npk")

# From the CSV files: tension's levels are then sorted (H, L, M), not R's L, M, H.
write_mm(breaks ~ wool * tension, read_data("warpbreaks"), "warpbreaks")
write_mm(mpg ~ wt + hp + factor(cyl) + wt:hp, read_data("mtcars"), "mtcars")
write_mm(Ozone ~ ., read_data("airquality"), "airquality")
write_mm(len ~ supp + poly(dose, 2), read_data("ToothGrowth"), "ToothGrowth")
write_mm(Sepal.Length ~ 0 + Species + Petal.Length, read_data("iris"), "iris")
write_mm(mpg ~ log(disp) + I(wt^2), read_data("mtcars"), "mtcars-log")
write_mm(mpg ~ wt:factor(cyl), read_data("mtcars"), "mtcars-slopes")
write_mm(yield ~ factor(block) + factor(N) * factor(P) * factor(K), read_data("npk"), "npk")
# R's own warpbreaks: tension's levels in R's order L, M, H (a pandas Categorical keeps it).
write_mm(breaks ~ wool * tension, warpbreaks, "warpbreaks-lmh")
