"""The rollout page: the two tracks side by side, their checks and the verification run."""
