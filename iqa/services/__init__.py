"""The iqa app's services: what its commands and views call (Django side; the learned metrics'
pure code is in ``iqa.learned``)."""
