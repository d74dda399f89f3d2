"""What the text front's image runs: the app (front.py), its model files (model_files.py), the model
server it calls (backend.py) and the names the task sets for it (front_environment.py)."""
