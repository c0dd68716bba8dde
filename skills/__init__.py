"""Plan goals, skills, occupations; the framework data file (the public pages that list courses live in courses/)."""
