"""Replace a generated block of a Markdown page: the text between
<!-- NAME:begin ... --> and <!-- NAME:end --> (the markers stay, the prose around them too)."""
import os
import re


def replace_block(path, name, text):
    page = open(path).read()
    m = re.search(r"(<!-- %s:begin[^>]*-->\n).*?(<!-- %s:end -->)" % (name, name), page, re.S)
    if not m:
        raise SystemExit("%s has no %s:begin/%s:end markers" % (path, name, name))
    page = page[:m.end(1)] + text.rstrip("\n") + "\n" + page[m.start(2):]
    with open(path, "w") as fh:
        fh.write(page)
    print("wrote the %s block of %s" % (name, os.path.relpath(path)))
