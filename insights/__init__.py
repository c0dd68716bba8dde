"""Insights: learning records (xAPI), dashboards and reports, employers' candidate lists."""
