"""MoMo Guard training: LightGBM on PaySim, the MLflow registry and the Prefect retrain flow."""
