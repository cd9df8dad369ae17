"""One sync cycle, by stage: who owns what, then pull, derive, record and push."""
