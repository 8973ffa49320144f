"""Operations for data protection: ``flask vc check`` (``checks.py``) and the compliance pack
(``pack.py``): the installation's own settings and measurements, turned into the documents a
data-protection officer and a certifier ask for.
"""
