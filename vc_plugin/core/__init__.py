"""Core: settings, tables, time, keys, audit, words and signals. Imports nothing else of ours."""
