"""The Model menu: the model card (Model > About), and Model > Retrain with its checks."""
