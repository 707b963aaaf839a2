"""Build-time tools for the course (not part of the installed package): the Colab set-up
cell (``setup_cell``), launch links (``course_links``) and the website (``site``)."""
