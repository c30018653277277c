"""What people read: DVC plot files, MLflow figures, leaderboard, runs table, progress."""
