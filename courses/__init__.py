"""Catalog, course structure, enrollment, progress, quizzes, authoring."""
