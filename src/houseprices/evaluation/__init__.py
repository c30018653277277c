"""Cross-validation, the log-RMSE metric, outlier rows and the ensemble."""
