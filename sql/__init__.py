"""The warehouse SQL: DDL in schema/, views in views/, parameterised statements in queries/."""
