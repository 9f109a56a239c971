"""``paas report`` (``paas doctor``): what the instance runs on and what is wrong with it,
each problem with its fix (``checks`` pure, ``probes`` read-only looks at the host)."""
