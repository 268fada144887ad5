ok
  {{ index (split "," "a") 3 }}
