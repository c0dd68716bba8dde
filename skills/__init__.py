"""Plan goals, skills, occupations; the framework data file; skills profile."""
