"""`breadth-assets run|status`: the main job and what it prints (`main`, `run_report`)."""
