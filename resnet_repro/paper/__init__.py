"""What the paper defines: its training recipe, its own reported numbers, the counted costs of its nets."""
