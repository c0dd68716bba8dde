"""Generate the data set, then benchmark the pages (one PostgreSQL, one run)."""

from bench import generate, pages

if __name__ == "__main__":
    generate.main()
    pages.main()
