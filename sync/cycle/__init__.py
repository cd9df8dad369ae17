"""One sync cycle, grouped by stage: context, pull, rows, derive, record, push."""
