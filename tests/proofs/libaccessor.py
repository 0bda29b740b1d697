"""A stand-in for an installed e-commerce/CMS library: its code reads ``.all()[0]``.

The function is compiled with a site-packages file name, so the panel treats it exactly as
library code (the user cannot rewrite it to read a ``Prefetch(to_attr=...)`` list).
"""

_SOURCE = '''
def primary_image(product):
    """The library's own accessor: the first image of a product's gallery."""
    return product.gallery_images.all()[0].image.file
'''

_namespace: dict = {}
exec(compile(_SOURCE, "/usr/lib/python3/site-packages/shoplib/images.py", "exec"), _namespace)  # noqa: S102
primary_image = _namespace["primary_image"]
