"""The tests of extrainterpreters 0.3.0 (see conftest.py). A package, so that its
conftest is not the module `conftest` that the other tests import."""
