"""Display scaling, colour maps and thumbnails (numpy, zlib): one implementation for every
picture IonSieve draws. No Django in here, on purpose."""
