"""Models and scenarios that mirror the test suites of two peer N+1 tools.

``social`` mirrors django-zeal's test app (users, posts, profiles, followers, tags);
``testapp`` mirrors nplusone's Django test app (users, pets, allergies, occupations,
addresses, hobbies). ``cases.py`` holds the scenarios, shared by ``tests/test_peer_cases.py``
(our product, through ``detect()``) and ``scripts/peers.py`` (the peers themselves).
"""
