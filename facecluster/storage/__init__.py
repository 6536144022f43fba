"""The face index (SQLite), the people tables with the user's corrections, and the output lock.

Storage imports no model code: it keeps faces as plain records (``facecluster.types``).
"""
