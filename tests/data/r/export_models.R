# Writes R's answers for weighted, factor, no-intercept, intercept-only and rank-deficient fits
# (fit-*.csv, anova-*.csv), used by tests/test_r_models.py (the tests never need R).
# Run from this folder: Rscript export_models.R   (R 4.2.2 with sandwich, Debian's
# r-base-core, r-cran-sandwich).
# Each fit-NAME.csv is long: quantity, name, value (value with %.17g: the float64 exactly;
# an empty cell for NA). The data are read back from the CSV files of export.R as gradfit
# reads them; the columns named in `text` are made factors (levels sorted), as gradfit makes
# text columns categorical. Weights: rep(c(...), length.out = n), which the tests rebuild.

library(sandwich)

rows <- list()
put <- function(quantity, values, names = NULL) {
  if (is.null(names)) names <- names(values)
  values <- as.numeric(values)
  if (is.null(names)) names <- rep("", length(values))
  rows[[length(rows) + 1]] <<- data.frame(
    quantity = quantity, name = as.character(names),
    value = ifelse(is.na(values), "", sprintf("%.17g", values)),
    stringsAsFactors = FALSE
  )
}
se <- function(V) sqrt(diag(V))

read_data <- function(name, text) {
  d <- read.csv(paste0(name, ".csv"), stringsAsFactors = TRUE)
  for (column in text) d[[column]] <- factor(as.character(d[[column]]))
  d
}

export_fit <- function(name, formula, d, w, new = NULL, cluster = NULL, hc = TRUE) {
  rows <<- list()
  d$w_ <- w
  f <- lm(formula, d, weights = w_)
  s <- summary(f)
  cf <- coef(f)  # NA for aliased coefficients
  put("coef", cf, names(cf))
  tab <- coef(s)  # estimable coefficients only
  put("se", tab[, 2], rownames(tab))
  put("t", tab[, 3], rownames(tab))
  put("p", tab[, 4], rownames(tab))
  put("sigma", s$sigma)
  put("r2", s$r.squared)
  put("adj_r2", s$adj.r.squared)
  if (!is.null(s$fstatistic)) put("fstatistic", s$fstatistic, names(s$fstatistic))
  put("df", s$df[1:2], c("rank", "resid"))
  put("nobs", nobs(f))
  put("loglik", logLik(f))
  put("aic", AIC(f))
  put("bic", BIC(f))
  put("residual_quantiles", quantile(s$residuals), c("Min", "1Q", "Median", "3Q", "Max"))
  ci <- confint(f, level = 0.9)
  put("confint_lower", ci[, 1], rownames(ci))
  put("confint_upper", ci[, 2], rownames(ci))
  if (hc) {
    for (type in c("HC0", "HC1", "HC2", "HC3")) put(paste0("se_", type), se(vcovHC(f, type)))
  }
  if (!is.null(cluster)) put("se_cluster", se(vcovCL(f, cluster = d[[cluster]])))  # HC1, cadjust
  a <- anova(f)
  for (column in c("Df", "Sum Sq", "Mean Sq", "F value", "Pr(>F)")) {
    put(paste0("anova_", column), a[[column]], rownames(a))
  }
  # Influence: R leaves out the rows of weight 0 (names: the 1-based data rows).
  h <- hatvalues(f)
  put("hat", h, names(h))
  put("rstandard", rstandard(f), names(h))
  put("rstudent", rstudent(f), names(h))
  put("cooks", cooks.distance(f), names(h))
  put("dffits", dffits(f), names(h))
  put("covratio", covratio(f), names(h))
  put("fitted", fitted(f), names(fitted(f)))
  put("residuals", residuals(f), names(residuals(f)))
  if (!is.null(new)) {
    for (interval in c("confidence", "prediction")) {
      p <- suppressWarnings(predict(f, new, interval = interval, level = 0.95))
      put(paste0(interval, "_fit"), unname(p[, 1]))
      put(paste0(interval, "_lower"), unname(p[, 2]))
      put(paste0(interval, "_upper"), unname(p[, 3]))
    }
  }
  out <- do.call(rbind, rows)
  write.csv(out, paste0("fit-", name, ".csv"), row.names = FALSE, quote = TRUE)
}

m <- read_data("mtcars", "cyl")
n <- nrow(m)
new_cars <- data.frame(
  wt = c(2.5, 3.2, 4.1), hp = c(100, 150, 210), cyl = factor(c("4", "6", "8"), levels = levels(m$cyl))
)
# weighted, a factor and its interaction with a slope; clusters: gear
export_fit("mtcars-wls", mpg ~ wt * cyl + hp, m, rep(c(1, 2, 0.5), length.out = n),
           new = new_cars, cluster = "gear")
# weights with zeros (8 rows of weight 0): summary, anova, confint, predict, influence
# (sandwich counts the rows of weight 0 in n; gradfit leaves them out: see test_r_models.py)
export_fit("mtcars-wls0", mpg ~ wt * cyl + hp, m, rep(c(1, 2, 0, 0.5), length.out = n),
           new = new_cars, hc = FALSE)
# the same fit on the rows of positive weight: its sandwich is gradfit's for the one above
keep <- rep(c(1, 2, 0, 0.5), length.out = n) > 0
export_fit("mtcars-wls0-kept", mpg ~ wt * cyl + hp, m[keep, ],
           rep(c(1, 2, 0, 0.5), length.out = n)[keep], cluster = "gear")
# no intercept, a full set of dummies: R's uncentred R² and F on 4 df
export_fit("mtcars-noint", mpg ~ 0 + cyl + wt, m, rep(c(1, 2, 0.5), length.out = n),
           new = new_cars, cluster = "gear")
# the intercept alone: no F test (R prints no R² and F lines), sandwich's HC of the mean
export_fit("mtcars-mean", mpg ~ 1, m, rep(c(1, 2, 0.5), length.out = n), new = new_cars,
           cluster = "gear")
# the F test of a slope against the intercept alone: anova(lm(y ~ 1), lm(y ~ x))
rows <- list()
d <- m; d$w_ <- rep(c(1, 2, 0.5), length.out = n)
a <- anova(lm(mpg ~ 1, d, weights = w_), lm(mpg ~ wt, d, weights = w_))
for (column in colnames(a)) put(column, a[[column]], rownames(a))
write.csv(do.call(rbind, rows), "anova-mtcars-null.csv", row.names = FALSE, quote = TRUE)

k <- read_data("npk", c("block", "N", "P", "K"))
# rank deficient: N:P:K is aliased with block (R: NA)
export_fit("npk-wls", yield ~ block + N * P * K, k, rep(c(1, 2, 0.5), length.out = nrow(k)))

# R's coding of interactions without their margins (TermCode): the coefficients, NA aliased
rows <- list()
m3 <- read_data("mtcars", c("cyl", "am", "gear"))
for (f in c("mpg ~ cyl:am", "mpg ~ am:gear + cyl", "mpg ~ wt + cyl:am:gear",
            "mpg ~ 0 + wt + cyl + am", "mpg ~ 0 + cyl:am", "mpg ~ cyl + cyl:wt")) {
  cf <- coef(lm(as.formula(f), m3))
  put(f, cf, names(cf))
}
write.csv(do.call(rbind, rows), "coef-interactions.csv", row.names = FALSE, quote = TRUE)

# R's printed anova tables (print.anova: printCoefmat's zapsmall, format, format.pval), one
# after another, each after a line "== NAME": tests/test_r_models.py compares gradfit's text.
w3 <- function(d) rep(c(1, 2, 0.5), length.out = nrow(d))
m$w_ <- w3(m); k$w_ <- w3(k)
wb <- read_data("warpbreaks", character(0))
aq <- read_data("airquality", character(0))
tables <- list(
  "mtcars-wls" = anova(lm(mpg ~ wt * cyl + hp, m, weights = w_)),
  "mtcars-null" = anova(lm(mpg ~ 1, m), lm(mpg ~ wt, m), lm(mpg ~ wt + hp, m)),
  "mtcars-dummies" = anova(lm(mpg ~ 0 + cyl, m, weights = w_)),
  "mtcars-nested" = anova(lm(mpg ~ wt, m), lm(mpg ~ wt + hp + qsec, m)),
  "warpbreaks" = anova(lm(breaks ~ wool * tension, wb)),
  "npk-wls" = anova(lm(yield ~ block + N * P * K, k, weights = w_)),
  "airquality" = anova(lm(Ozone ~ Solar.R + Wind + Temp, aq))
)
lines <- character(0)
for (name in names(tables)) lines <- c(lines, paste("==", name), capture.output(print(tables[[name]])))
writeLines(lines, "anova-print.txt")
