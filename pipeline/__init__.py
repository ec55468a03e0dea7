"""The managed ML pipeline (§3 of the paper): ingest, validate, engineer features, train, evaluate.

Pure machine learning on pandas frames and scikit-learn estimators: no database, no daemon. The actuators
call it to retrain and rerun; the knowledge store records what it produced.
"""
