"""Training: the Prefect retrain flow, its data windows, LightGBM, quality metrics, promotion and the model card."""
