"""Root conftest of the chartpolicy repository.

The plugin itself is the installed ``chartpolicy`` package (entry point
``pytest11``), not this file: another chart repository gets the same
behaviour without it.  Because the catalog directory (policies/) is also the
package ``chartpolicy.policies`` in an editable install, pytest may load this
file from runs rooted elsewhere: keep it free of ``pytest_plugins`` and of
anything that changes behaviour.
"""

# Not test code: chart fixtures and benchmark scripts.
collect_ignore = ["charts_under_test", "bench"]
