{{ not a template }} [[ env "NAME" ]] [[- " x" ]]
