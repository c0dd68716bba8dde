"""Generate the data set, then benchmark the pages (one PostgreSQL, one run)."""

from bench import certificates, generate, pages

if __name__ == "__main__":
    generate.main()
    pages.main()  # writes bench/RESULTS.md
    certificates.main()  # appends to it
