"""The Fleet page: the stations that share this station's database."""
