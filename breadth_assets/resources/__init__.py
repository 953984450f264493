"""One resource per module; `breadth_assets.deployment` picks them for a deployment."""
