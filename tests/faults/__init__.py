"""Views that feed the prefetch panel bad, odd and extreme input (GitHub issue 7)."""
