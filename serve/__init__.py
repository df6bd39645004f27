"""The live demo: upload a picture, see the model's top-3 classes and where it looked.

``python -m serve --model models/export.pkl`` starts it; :func:`serve.app.create_app` builds the
Starlette app (routes and the JSON API are documented in :mod:`serve.app`).
"""
